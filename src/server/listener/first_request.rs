//! The bound on a connection's first request (see [`FirstRequest`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Ready when the header-read timeout passes before the connection's first
/// request. Once a request has started, the timer is dropped (taken out of
/// the timer wheel) and never polled again: the connection's later
/// wake-ups, one per request, cost an atomic load here instead of a timer
/// poll.
pub(super) struct FirstRequest {
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    started: Arc<AtomicBool>,
}

impl FirstRequest {
    /// Times out after `timeout` unless `started` is set first.
    pub(super) fn new(timeout: Duration, started: Arc<AtomicBool>) -> FirstRequest {
        FirstRequest {
            timer: Some(Box::pin(tokio::time::sleep(timeout))),
            started,
        }
    }
}

impl Future for FirstRequest {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.started.load(Ordering::Relaxed) {
            // Pending for good; the connection's own progress wakes the task.
            self.timer = None;
            return std::task::Poll::Pending;
        }
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

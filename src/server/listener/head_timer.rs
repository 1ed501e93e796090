//! The timer behind hyper's HTTP/1.1 header-read timeout (see
//! [`HeadTimer`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::time::Sleep;

/// The timer of one HTTP/1.1 connection, for hyper's header-read timeout.
///
/// hyper asks for a new sleep at every request head (deadline: now plus
/// the timeout) and drops it once the head is read. With tokio's timer
/// each of those is an entry put into the timer wheel and taken out again,
/// per request. Here every sleep of the connection shares one tokio sleep,
/// armed at the earliest deadline it was asked for: a later deadline
/// leaves it alone, and when it fires for a deadline already dropped it is
/// re-armed for the sleep still waiting. On a busy keep-alive connection
/// the wheel is touched about once per timeout, not once per request.
///
/// A sleep is ready exactly when its own deadline has passed; a sleep
/// that fires early for an older deadline never reports it.
///
/// One per connection, never shared: the tokio sleep keeps the waker of
/// the last task that polled it, and hyper polls a connection's sleeps
/// from that connection's task only. Not `Clone`, so that a builder made
/// once and cloned for many connections cannot share it by mistake.
#[derive(Default)]
pub(super) struct HeadTimer {
    shared: Arc<Mutex<Option<Pin<Box<Sleep>>>>>,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep_until(self.now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep {
            deadline: deadline.into(),
            shared: self.shared.clone(),
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(mut sleep) => sleep.deadline = new_deadline.into(),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    /// tokio's clock, so that tests with paused time see the timeout.
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// One deadline of a [`HeadTimer`].
struct HeadSleep {
    deadline: tokio::time::Instant,
    shared: Arc<Mutex<Option<Pin<Box<Sleep>>>>>,
}

impl hyper::rt::Sleep for HeadSleep {}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        // Only this connection's task polls its sleeps: never contended.
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        let sleep = shared.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        loop {
            match sleep.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if sleep.deadline() >= deadline => return Poll::Ready(()),
                // Fired for an earlier deadline, whose sleep is gone.
                Poll::Ready(()) => sleep.as_mut().reset(deadline),
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! The header-read timeout of a connection (see [`Watchdog`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Checks per timeout: a connection is closed between one and 1¼ timeouts
/// after its last request ended.
const TICKS: u32 = 4;

/// What a connection's requests did, as its [`Watchdog`] reads it: counted
/// by the service as each request starts and as its response is made.
#[derive(Debug, Default)]
pub(super) struct Activity {
    started: AtomicU32,
    answered: AtomicU32,
    multiplexed: AtomicBool,
}

impl Activity {
    /// A request came in (its head is read).
    pub(super) fn start(&self, version: http::Version) {
        if version == http::Version::HTTP_2 {
            self.multiplexed.store(true, Ordering::Relaxed);
        }
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A request's response is made.
    pub(super) fn answer(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
    }

    fn seen(&self) -> (u32, u32) {
        (
            self.started.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed),
        )
    }
}

/// Ready when a connection has waited a whole timeout for a request: no
/// request started and none open since the last one was answered (or since
/// the connection was accepted). That bounds protocol sniffing, the first
/// request of any connection, each HTTP/1.1 request head (a head trickled
/// in slower than the timeout starts no request) and HTTP/1.1 keep-alive
/// idle time. An HTTP/2 connection is bounded until its first stream, then
/// by its own keep-alive pings. A request being answered is bounded by its
/// own deadlines (body read, verification), not here.
///
/// One timer per connection, checked [`TICKS`] times per timeout, instead
/// of hyper's, which takes a new sleep (a boxed timer entry) and a clock
/// read for every request head. Per request this costs two counter
/// increments. The check counts quiet ticks, so a connection is closed
/// between one and 1¼ timeouts after its last activity.
pub(super) struct Watchdog {
    activity: Arc<Activity>,
    /// `None` once the connection is found to be HTTP/2 after a request.
    sleep: Option<Pin<Box<Sleep>>>,
    tick: Duration,
    seen: (u32, u32),
    quiet: u32,
}

impl Watchdog {
    /// Watches `activity` with a header-read timeout of `timeout`.
    pub(super) fn new(timeout: Duration, activity: Arc<Activity>) -> Watchdog {
        let tick = (timeout / TICKS).max(Duration::from_millis(1));
        Watchdog {
            activity,
            sleep: Some(Box::pin(tokio::time::sleep(tick))),
            tick,
            seen: (0, 0),
            quiet: 0,
        }
    }
}

impl Future for Watchdog {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let Some(sleep) = this.sleep.as_mut() else {
                // Pending for good; the connection's own progress wakes the task.
                return Poll::Pending;
            };
            ready!(sleep.as_mut().poll(cx));
            let seen = this.activity.seen();
            if seen.0 > 0 && this.activity.multiplexed.load(Ordering::Relaxed) {
                this.sleep = None;
                continue;
            }
            if seen != this.seen {
                this.seen = seen;
                this.quiet = 0;
            } else if seen.0 == seen.1 {
                this.quiet += 1;
                if this.quiet >= TICKS {
                    return Poll::Ready(());
                }
            }
            // From now, not from the deadline: a task that was kept from
            // running for a while does not count ticks it never waited.
            sleep.as_mut().reset(Instant::now() + this.tick);
        }
    }
}

#[cfg(test)]
mod tests;

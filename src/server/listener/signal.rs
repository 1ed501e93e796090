//! Server-wide signals every connection watches (drain, abort), checked on
//! each wake-up of a connection for the price of one atomic load.
//!
//! A `tokio::sync::watch` or `Notify` future that is still waiting takes
//! its notifier's lock every time it is polled, and a connection's task is
//! polled at least once per request: one shared lock per request and per
//! signal, contended across cores. [`Raised`] registers its waker once,
//! then only reads the flag; [`Draining`] starts a connection's graceful
//! shutdown when the drain signal is raised.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A flag raised once, waking every [`Raised`] waiting on it.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    raised: AtomicBool,
    notify: Notify,
}

impl Signal {
    /// Raises the flag and wakes every waiter; later waiters are ready at
    /// once.
    pub(crate) fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// A future ready once the flag is raised.
    pub(crate) fn raised(&self) -> Raised<'_> {
        Raised {
            signal: self,
            notified: self.notify.notified(),
            registered: false,
        }
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Signal::raised`].
    pub(crate) struct Raised<'a> {
        signal: &'a Signal,
        #[pin]
        notified: Notified<'a>,
        registered: bool,
    }
}

impl Future for Raised<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if !*this.registered {
            // The first poll leaves the task's waker with the notifier
            // (under its lock); `raise` wakes it. The flag is read after
            // that, so a signal raised before the registration is seen.
            *this.registered = true;
            if this.notified.poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        if this.signal.is_raised() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that starts its graceful shutdown when the drain does.
    pub(super) struct Draining<'a, C, F> {
        #[pin]
        conn: C,
        #[pin]
        drain: Raised<'a>,
        // Taken when called.
        shutdown: Option<F>,
    }
}

impl<C: Future, F: FnOnce(Pin<&mut C>)> Future for Draining<'_, C, F> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if this.shutdown.is_some()
            && this.drain.poll(cx).is_ready()
            && let Some(shutdown) = this.shutdown.take()
        {
            shutdown(this.conn.as_mut());
        }
        this.conn.poll(cx)
    }
}

impl<'a, C, F> Draining<'a, C, F> {
    /// `conn`, with `shutdown` called on it once `drain` is ready.
    pub(super) fn new(conn: C, drain: Raised<'a>, shutdown: F) -> Self {
        Draining {
            conn,
            drain,
            shutdown: Some(shutdown),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_wakes_when_raised_and_a_late_one_is_ready_at_once() {
        let signal = Arc::new(Signal::default());
        let waiting = tokio::spawn({
            let signal = signal.clone();
            async move { signal.raised().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        signal.raise();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("no panic");
        tokio::time::timeout(Duration::from_secs(5), signal.raised())
            .await
            .expect("ready at once");
    }

    #[tokio::test]
    async fn a_pending_waiter_stays_pending_across_polls() {
        let signal = Signal::default();
        let mut raised = std::pin::pin!(signal.raised());
        for _ in 0..3 {
            assert!(futures_util::poll!(raised.as_mut()).is_pending());
        }
        signal.raise();
        assert!(futures_util::poll!(raised.as_mut()).is_ready());
    }
}

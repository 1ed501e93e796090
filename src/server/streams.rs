//! Running an HTTP/2 connection's streams inside the connection's own task.
//!
//! hyper runs every HTTP/2 stream through the executor it is given, and
//! with `tokio::spawn` each stream is a task of its own. On tokio's
//! multi-threaded scheduler a stream task that finishes wakes the
//! connection task straight into the worker's LIFO slot, so the connection
//! writes each response the moment it is ready: one `writev` and one TLS
//! record per response. Under an apiserver's fan-out (tens of reviews in
//! flight on one connection) that per-response write was most of the
//! server's CPU. Here the connection's task polls its streams itself: every
//! stream that can finish does so within one poll of the connection, and
//! their responses leave together. Measured under h2load's fan-out shape:
//! 0.93 → 0.05 `writev` per request and about half the CPU per request
//! (`loadtest/RESULTS.md`).
//!
//! What it costs: the streams of one connection share one core. A review
//! is a few microseconds of CPU, so one core answers far more than an
//! apiserver sends on a connection, and connections still spread over all
//! cores. Should a stream panic outside the handler's own panic guard
//! (inside hyper), it takes its connection down rather than only itself;
//! the other connections carry on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use futures_util::task::AtomicWaker;

/// One HTTP/2 stream's future, as hyper hands it over.
type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Times one poll of a connection goes round (connection, then its
/// streams) while streams keep finishing; then it yields to other tasks.
const ROUNDS: usize = 4;

/// Streams handed over by hyper and not yet picked up by the connection.
#[derive(Default)]
struct Inbox {
    queue: Mutex<Vec<Stream>>,
    /// Set (under the lock) when `queue` is given a stream, cleared when it
    /// is emptied: an HTTP/1.1 connection never has streams, and its every
    /// wake-up costs one load here instead of taking the lock.
    queued: AtomicBool,
    /// The connection's task, woken when a stream arrives outside its poll.
    waker: AtomicWaker,
}

impl Inbox {
    /// The streams queued since the last call. A stream being queued while
    /// this reads nothing is not lost: its `execute` wakes the connection,
    /// whose waker is registered before this is called.
    fn take(&self) -> Vec<Stream> {
        if !self.queued.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        self.queued.store(false, Ordering::Relaxed);
        std::mem::take(&mut *queue)
    }
}

/// The executor given to hyper for one connection: it queues streams for
/// that connection's [`WithStreams`] instead of spawning them.
#[derive(Clone)]
pub struct StreamExecutor {
    inbox: Arc<Inbox>,
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        {
            let mut queue = self
                .inbox
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            queue.push(Box::pin(stream));
            self.inbox.queued.store(true, Ordering::Release);
        }
        self.inbox.waker.wake();
    }
}

pin_project_lite::pin_project! {
    /// A connection future that also drives the streams its executor was
    /// given; it ends when the connection ends (streams still running then
    /// are dropped: their connection is gone).
    pub struct WithStreams<C> {
        #[pin]
        conn: C,
        inbox: Arc<Inbox>,
        streams: FuturesUnordered<Stream>,
    }
}

/// An executor for one connection, and the wrapper that runs what it is
/// given inside that connection's task.
pub fn executor() -> StreamExecutor {
    StreamExecutor {
        inbox: Arc::new(Inbox::default()),
    }
}

impl StreamExecutor {
    /// Wraps the connection future built with this executor.
    pub fn drive<C: Future>(&self, conn: C) -> WithStreams<C> {
        WithStreams {
            conn,
            inbox: self.inbox.clone(),
            streams: FuturesUnordered::new(),
        }
    }
}

impl<C: Future> Future for WithStreams<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        this.inbox.waker.register(cx.waker());
        for _ in 0..ROUNDS {
            if let Poll::Ready(done) = this.conn.as_mut().poll(cx) {
                return Poll::Ready(done);
            }
            this.streams.extend(this.inbox.take());
            let mut finished = false;
            while !this.streams.is_empty()
                && let Poll::Ready(Some(())) = this.streams.poll_next_unpin(cx)
            {
                finished = true;
            }
            if !finished {
                // Nothing finished: the connection has nothing new to
                // write, and every pending part has registered a wake-up.
                return Poll::Pending;
            }
            // Finished streams queued their responses: go round again so
            // that the connection writes them in this same poll.
        }
        // Still busy after a few rounds: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn streams_run_inside_the_connection_and_end_with_it() {
        let exec = executor();
        let done = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The "connection" hands over three streams, one of which waits on
        // the channel, then ends once two have finished.
        let conn = {
            let (exec, done) = (exec.clone(), done.clone());
            let mut rx = Some(rx);
            let mut started = false;
            std::future::poll_fn(move |_cx| {
                if !started {
                    started = true;
                    for _ in 0..2 {
                        let done = done.clone();
                        exec.execute(async move {
                            tokio::task::yield_now().await;
                            done.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    let (done, rx) = (done.clone(), rx.take().unwrap());
                    exec.execute(async move {
                        let _ = rx.await;
                        done.fetch_add(100, Ordering::SeqCst);
                    });
                }
                if done.load(Ordering::SeqCst) >= 2 {
                    Poll::Ready("closed")
                } else {
                    Poll::Pending
                }
            })
        };
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), exec.drive(conn))
            .await
            .expect("the connection ends once its streams are done");
        assert_eq!(closed, "closed");
        assert_eq!(
            done.load(Ordering::SeqCst),
            2,
            "the waiting stream was dropped"
        );
        assert!(tx.send(()).is_err(), "its receiver is gone with it");
    }

    /// The clock is paused: the 20 ms sleep ends only once the runtime is
    /// idle, that is once the connection task has parked.
    #[tokio::test(start_paused = true)]
    async fn a_stream_handed_over_from_outside_wakes_the_connection() {
        let exec = executor();
        let done = Arc::new(AtomicUsize::new(0));
        let conn = {
            let done = done.clone();
            std::future::poll_fn(move |_cx| {
                if done.load(Ordering::SeqCst) == 1 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        let driven = tokio::spawn(exec.drive(conn));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let counted = done.clone();
        exec.execute(async move {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::timeout(std::time::Duration::from_secs(10), driven)
            .await
            .expect("woken by the hand-over")
            .unwrap();
    }
}

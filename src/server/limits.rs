//! Per-request limits and isolation: reading a body into one buffer within
//! a size and a time limit, and turning a panicking handler into one 500.
//!
//! Connection-level limits (count, header timeout, HTTP/2 settings) are set
//! where connections are made, in [`listener`](super::listener).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Buf;
use hyper::body::Body;
use tokio::time::Sleep;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Longer than the limit (by `Content-Length` or by counting).
    #[error("request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Not complete within the body-read timeout.
    #[error("request body not received within {0:?}")]
    Timeout(Duration),
    /// The request bodies in memory would exceed the server's budget.
    #[error("server busy: request bodies in memory at the limit of {budget} bytes, retry")]
    Busy {
        /// The budget in bytes (`--max-buffered-body-bytes`).
        budget: usize,
    },
    /// The connection failed while reading.
    #[error("cannot read request body")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Holds a gauge one higher while alive; the decrement also happens on
/// unwind or cancellation. It borrows the gauge: a clone would be one more
/// reference count to raise and drop.
pub(crate) struct GaugeGuard<'a>(&'a prometheus::IntGauge);

impl GaugeGuard<'_> {
    pub(crate) fn new(gauge: &prometheus::IntGauge) -> GaugeGuard<'_> {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The bytes of request bodies that all requests together may hold in
/// memory. Each body takes its buffer's capacity from it before allocating
/// and gives it back when the request is done.
///
/// One counter: a body never waits for room (it is answered busy), so no
/// queue of waiters is kept, and taking and giving back are one atomic
/// operation each (a semaphore's release takes its waiters' lock).
#[derive(Debug)]
pub(crate) struct BodyBudget {
    taken: AtomicUsize,
    total: usize,
}

impl BodyBudget {
    pub(crate) fn new(total: usize) -> BodyBudget {
        BodyBudget {
            taken: AtomicUsize::new(0),
            total,
        }
    }

    /// Bytes not taken by any body now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.total - self.taken.load(Ordering::Relaxed)
    }

    /// Takes `n` more bytes into `held`, or says the budget is spent.
    fn take<'a>(&'a self, n: usize, held: &mut Option<Share<'a>>) -> Result<(), BodyError> {
        self.taken
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |taken| {
                taken.checked_add(n).filter(|&after| after <= self.total)
            })
            .map_err(|_| BodyError::Busy { budget: self.total })?;
        match held {
            Some(held) => held.bytes += n,
            None => {
                *held = Some(Share {
                    budget: self,
                    bytes: n,
                });
            }
        }
        Ok(())
    }
}

/// Bytes of the [`BodyBudget`] one body holds; given back on drop.
#[derive(Debug)]
pub(crate) struct Share<'a> {
    budget: &'a BodyBudget,
    bytes: usize,
}

impl Share<'_> {
    /// Gives `n` of the bytes back now (at most all of them).
    fn give_back(&mut self, n: usize) {
        let n = n.min(self.bytes);
        self.bytes -= n;
        self.budget.taken.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        self.give_back(self.bytes);
    }
}

/// A body read into memory, holding its share of the [`BodyBudget`] until
/// it is dropped.
#[derive(Debug)]
pub(crate) struct ReadBytes<'a> {
    pub(crate) bytes: Vec<u8>,
    budget: Option<Share<'a>>,
}

impl<'a> ReadBytes<'a> {
    /// The bytes, and the budget share to keep while they live.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Option<Share<'a>>) {
        (self.bytes, self.budget)
    }
}

/// Reads a whole body into one `Vec`, refusing more than `limit` bytes,
/// giving up after `timeout` of waiting for it, and answering busy when the
/// budget for bodies in memory is spent.
///
/// A declared length above the limit is refused before any byte is read.
/// The buffer is sized from the declared length when there is one (capped by
/// the limit, so a lying header cannot make it allocate more). Otherwise the
/// body is gathered in [`SEGMENT`]-sized pieces and copied into one buffer of
/// its exact size at the end: growing one buffer by doubling reallocates
/// through every size class, which under many parallel uploads leaves the
/// allocator holding several times the budget.
pub(crate) fn read_body<B>(
    body: B,
    limit: usize,
    timeout: Duration,
    budget: &BodyBudget,
) -> ReadBody<'_, B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let hint = body.size_hint();
    let refused = usize::try_from(hint.lower()).map_or(true, |lower| lower > limit);
    let capacity = if refused {
        0
    } else {
        hint.exact()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(limit)
    };
    let mut held = None;
    let busy = budget.take(capacity, &mut held).err();
    ReadBody {
        body,
        buf: Segments {
            current: if busy.is_none() {
                Vec::with_capacity(capacity)
            } else {
                Vec::new()
            },
            full: Vec::new(),
            len: 0,
        },
        limit,
        timeout,
        deadline: None,
        refused,
        budget,
        held,
        busy,
    }
}

/// Size of the pieces a body of undeclared length is gathered in.
pub(crate) const SEGMENT: usize = 64 * 1024;

/// A body being gathered: the buffer being filled, and the full ones before
/// it. A body of declared length has one buffer of that size and, unless it
/// lied, never a second.
#[derive(Debug)]
struct Segments {
    current: Vec<u8>,
    full: Vec<Vec<u8>>,
    /// Bytes in `full`.
    len: usize,
}

impl Segments {
    fn push<'a>(
        &mut self,
        mut data: impl Buf,
        limit: usize,
        budget: &'a BodyBudget,
        held: &mut Option<Share<'a>>,
    ) -> Result<(), BodyError> {
        let total = self.len + self.current.len();
        if total.saturating_add(data.remaining()) > limit {
            return Err(BodyError::TooLarge { limit });
        }
        while data.has_remaining() {
            let room = self.current.capacity() - self.current.len();
            if room == 0 {
                let size = SEGMENT.min(limit - self.len - self.current.len());
                budget.take(size, held)?;
                let full = std::mem::replace(&mut self.current, Vec::with_capacity(size));
                if !full.is_empty() {
                    self.len += full.len();
                    self.full.push(full);
                }
                continue;
            }
            let chunk = data.chunk();
            let n = chunk.len().min(room);
            self.current.extend_from_slice(&chunk[..n]);
            data.advance(n);
        }
        Ok(())
    }

    /// The whole body in one buffer: the only one, or the pieces copied
    /// into a buffer of the exact size (taken from the budget first; the
    /// pieces' share is given back once they are freed).
    fn finish<'a>(
        &mut self,
        budget: &'a BodyBudget,
        held: &mut Option<Share<'a>>,
    ) -> Result<Vec<u8>, BodyError> {
        if self.full.is_empty() {
            return Ok(std::mem::take(&mut self.current));
        }
        let total = self.len + self.current.len();
        let pieces: usize =
            self.full.iter().map(Vec::capacity).sum::<usize>() + self.current.capacity();
        budget.take(total, held)?;
        let mut whole = Vec::with_capacity(total);
        for piece in self.full.drain(..) {
            whole.extend_from_slice(&piece);
        }
        whole.extend_from_slice(&self.current);
        self.current = Vec::new();
        if let Some(share) = held.as_mut() {
            share.give_back(pieces);
        }
        Ok(whole)
    }
}

pin_project_lite::pin_project! {
    /// The future of [`read_body`].
    ///
    /// Its timer starts when the body first has to be waited for: a body
    /// that has already arrived with its head (the usual small review)
    /// never arms a timer. The timer is boxed, as it is only needed then.
    pub(crate) struct ReadBody<'a, B> {
        #[pin]
        body: B,
        buf: Segments,
        limit: usize,
        timeout: Duration,
        deadline: Option<Pin<Box<Sleep>>>,
        refused: bool,
        budget: &'a BodyBudget,
        held: Option<Share<'a>>,
        busy: Option<BodyError>,
    }
}

impl<'a, B> Future for ReadBody<'a, B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<ReadBytes<'a>, BodyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = *this.limit;
        if *this.refused {
            return Poll::Ready(Err(BodyError::TooLarge { limit }));
        }
        if let Some(busy) = this.busy.take() {
            *this.refused = true;
            return Poll::Ready(Err(busy));
        }
        loop {
            match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(None) => {
                    let done = this
                        .buf
                        .finish(this.budget, this.held)
                        .map(|bytes| ReadBytes {
                            bytes,
                            budget: this.held.take(),
                        });
                    *this.refused = true;
                    return Poll::Ready(done);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(BodyError::Read(e.into()))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data()
                        && let Err(e) = this.buf.push(data, limit, this.budget, this.held)
                    {
                        *this.refused = true;
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Pending => break,
            }
        }
        let timeout = *this.timeout;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(BodyError::Timeout(timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs a handler future, turning a panic inside it into `Err` with the
/// panic message, so that one request fails and its connection (and the
/// other HTTP/2 streams on it) carry on.
///
/// A named future rather than an `async fn`: the handler's future is held
/// once, in place (an `async fn` would keep its argument beside the pinned
/// copy, doubling the size of every request's state).
pub(crate) fn isolate<F: Future>(future: F) -> Isolate<F> {
    Isolate { future }
}

pin_project_lite::pin_project! {
    /// The future of [`isolate`].
    pub(crate) struct Isolate<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Isolate<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The message of a panic payload (`panic!` with a string or a format).
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests;

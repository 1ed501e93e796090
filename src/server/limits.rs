//! Per-request limits and isolation: reading a body into one buffer within
//! a size and a time limit, and turning a panicking handler into one 500.
//!
//! Connection-level limits (count, header timeout, HTTP/2 settings) are set
//! where connections are made, in [`listener`](super::listener).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
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
    /// The connection failed while reading.
    #[error("cannot read request body")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Holds a gauge one higher while alive; the decrement also happens on
/// unwind or cancellation.
pub(crate) struct GaugeGuard(prometheus::IntGauge);

impl GaugeGuard {
    pub(crate) fn new(gauge: prometheus::IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Reads a whole body into one `Vec`, refusing more than `limit` bytes and
/// giving up after `timeout` of waiting for it.
///
/// A declared length above the limit is refused before any byte is read.
/// The buffer is sized from the declared length when there is one (capped by
/// the limit, so a lying header cannot make it allocate more).
pub(crate) fn read_body<B>(body: B, limit: usize, timeout: Duration) -> ReadBody<B>
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
    ReadBody {
        body,
        buf: Vec::with_capacity(capacity),
        limit,
        timeout,
        deadline: None,
        refused,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`read_body`].
    ///
    /// Its timer starts when the body first has to be waited for: a body
    /// that has already arrived with its head (the usual small review)
    /// never arms a timer. The timer is boxed, as it is only needed then.
    pub(crate) struct ReadBody<B> {
        #[pin]
        body: B,
        buf: Vec<u8>,
        limit: usize,
        timeout: Duration,
        deadline: Option<Pin<Box<Sleep>>>,
        refused: bool,
    }
}

impl<B> Future for ReadBody<B>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = Result<Vec<u8>, BodyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let limit = *this.limit;
        if *this.refused {
            return Poll::Ready(Err(BodyError::TooLarge { limit }));
        }
        loop {
            match this.body.as_mut().poll_frame(cx) {
                Poll::Ready(None) => return Poll::Ready(Ok(std::mem::take(this.buf))),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(BodyError::Read(e.into()))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(mut data) = frame.into_data() {
                        if this.buf.len().saturating_add(data.remaining()) > limit {
                            *this.refused = true;
                            return Poll::Ready(Err(BodyError::TooLarge { limit }));
                        }
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            this.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
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
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::body::Frame;

    /// A body of several frames with no declared length.
    struct Chunks(std::collections::VecDeque<&'static [u8]>);
    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(
                self.0
                    .pop_front()
                    .map(|p| Ok(Frame::data(Bytes::from_static(p)))),
            )
        }
    }
    fn chunks(parts: Vec<&'static [u8]>) -> Chunks {
        Chunks(parts.into())
    }

    #[tokio::test]
    async fn reads_within_limit() {
        let body = Full::new(Bytes::from_static(b"hello"));
        let buf = read_body(body, 5, Duration::from_secs(1)).await.unwrap();
        assert_eq!(buf, b"hello");
        assert!(buf.capacity() >= 5);
    }

    #[tokio::test]
    async fn refuses_declared_length_over_limit() {
        let body = Full::new(Bytes::from_static(b"hello!"));
        let err = read_body(body, 5, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { limit: 5 }));
    }

    #[tokio::test]
    async fn counts_undeclared_length() {
        let body = chunks(vec![b"abc", b"def"]);
        let err = read_body(body, 5, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { .. }));
        let body = chunks(vec![b"ab", b"cde"]);
        assert_eq!(
            read_body(body, 5, Duration::from_secs(1)).await.unwrap(),
            b"abcde"
        );
    }

    #[tokio::test]
    async fn times_out() {
        struct Never;
        impl Body for Never {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
                Poll::Pending
            }
        }
        let err = read_body(Never, 5, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(err, BodyError::Timeout(_)));
    }

    #[tokio::test]
    async fn isolate_turns_a_panic_into_an_error() {
        assert_eq!(isolate(async { 7 }).await, Ok(7));
        let err = isolate(async {
            tokio::task::yield_now().await;
            if std::hint::black_box(true) {
                panic!("boom {}", 1);
            }
            0
        })
        .await
        .unwrap_err();
        assert_eq!(err, "boom 1");
    }
}

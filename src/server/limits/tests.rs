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

fn budget() -> BodyBudget {
    BodyBudget::new(1 << 20)
}

#[tokio::test]
async fn bodies_take_from_the_budget_and_give_back() {
    let budget = BodyBudget::new(10);
    // A declared length takes its bytes at once.
    let first = read_body(
        Full::new(Bytes::from_static(b"123456")),
        8,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap();
    assert_eq!(budget.available(), 4);
    // A second body that does not fit is refused as busy, not read.
    let err = read_body(
        Full::new(Bytes::from_static(b"abcdef")),
        8,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BodyError::Busy { budget: 10 }), "{err:?}");
    // An undeclared length is charged as its buffer grows.
    let err = read_body(
        chunks(vec![b"ab", b"cd", b"ef"]),
        8,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BodyError::Busy { .. }), "{err:?}");
    assert_eq!(budget.available(), 4, "a refused body gives its bytes back");
    drop(first);
    assert_eq!(budget.available(), 10);
    let body = read_body(
        chunks(vec![b"ab", b"cd", b"ef"]),
        8,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap();
    assert_eq!(body.bytes, b"abcdef");
    assert!(body.bytes.capacity() <= 8, "never past the limit");
    assert_eq!(budget.available(), 10 - body.bytes.capacity());
    drop(body);
    assert_eq!(budget.available(), 10);
}

#[tokio::test]
async fn a_long_undeclared_body_ends_in_one_exact_buffer() {
    static A: [u8; 50_000] = [b'a'; 50_000];
    static B: [u8; 50_000] = [b'b'; 50_000];
    static C: [u8; 50_001] = [b'c'; 50_001];
    let budget = BodyBudget::new(1 << 20);
    let body = read_body(
        chunks(vec![&A, &B, &C]),
        1 << 20,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap();
    assert_eq!(body.bytes.len(), 150_001);
    assert_eq!(body.bytes.capacity(), 150_001);
    assert!(body.bytes[..50_000].iter().all(|&b| b == b'a'));
    assert!(body.bytes[50_000..100_000].iter().all(|&b| b == b'b'));
    assert!(body.bytes[100_000..].iter().all(|&b| b == b'c'));
    // Only the final buffer is still charged: the pieces gave theirs back.
    assert_eq!(budget.available(), (1 << 20) - 150_001);
    drop(body);
    assert_eq!(budget.available(), 1 << 20);
    // The limit still counts across pieces.
    let err = read_body(
        chunks(vec![&A, &B, &C]),
        150_000,
        Duration::from_secs(1),
        &budget,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, BodyError::TooLarge { limit: 150_000 }),
        "{err:?}"
    );
    assert_eq!(budget.available(), 1 << 20);
}

#[tokio::test]
async fn reads_within_limit() {
    let body = Full::new(Bytes::from_static(b"hello"));
    let buf = read_body(body, 5, Duration::from_secs(1), &budget())
        .await
        .unwrap()
        .bytes;
    assert_eq!(buf, b"hello");
    assert!(buf.capacity() >= 5);
}

#[tokio::test]
async fn refuses_declared_length_over_limit() {
    let body = Full::new(Bytes::from_static(b"hello!"));
    let err = read_body(body, 5, Duration::from_secs(1), &budget())
        .await
        .unwrap_err();
    assert!(matches!(err, BodyError::TooLarge { limit: 5 }));
}

#[tokio::test]
async fn counts_undeclared_length() {
    let body = chunks(vec![b"abc", b"def"]);
    let err = read_body(body, 5, Duration::from_secs(1), &budget())
        .await
        .unwrap_err();
    assert!(matches!(err, BodyError::TooLarge { .. }));
    let body = chunks(vec![b"ab", b"cde"]);
    assert_eq!(
        read_body(body, 5, Duration::from_secs(1), &budget())
            .await
            .unwrap()
            .bytes,
        b"abcde"
    );
}

/// The clock is paused: the runtime, idle while the body never comes,
/// jumps to the deadline, so a long timeout costs no wall time.
#[tokio::test(start_paused = true)]
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
    let started = tokio::time::Instant::now();
    let err = read_body(Never, 5, Duration::from_secs(10), &budget())
        .await
        .unwrap_err();
    assert!(matches!(err, BodyError::Timeout(_)));
    assert_eq!(started.elapsed(), Duration::from_secs(10));
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

#[test]
fn the_budget_never_goes_past_its_total_under_concurrent_takes() {
    const TOTAL: usize = 1000;
    let budget = BodyBudget::new(TOTAL);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for n in 1..2000 {
                    let mut held = None;
                    let took = budget.take(n % 400 + 1, &mut held).is_ok();
                    assert_eq!(took, held.is_some());
                    assert!(budget.available() <= TOTAL);
                    if n % 3 == 0 && took {
                        // A second take adds to the same share.
                        let _ = budget.take(n % 7, &mut held);
                    }
                }
            });
        }
    });
    assert_eq!(budget.available(), TOTAL, "every share was given back");
}

#[test]
fn a_take_that_would_overflow_is_busy() {
    let budget = BodyBudget::new(usize::MAX);
    let mut held = None;
    budget.take(usize::MAX - 1, &mut held).unwrap();
    let mut other = None;
    assert!(matches!(
        budget.take(2, &mut other),
        Err(BodyError::Busy { budget: usize::MAX })
    ));
    assert!(other.is_none());
    drop(held);
    assert_eq!(budget.available(), usize::MAX);
}

use futures_util::FutureExt as _;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);
const TICK: Duration = Duration::from_millis(2500);

fn watch() -> (Arc<Activity>, Pin<Box<Watchdog>>) {
    let activity = Arc::new(Activity::default());
    let watchdog = Box::pin(Watchdog::new(TIMEOUT, activity.clone()));
    (activity, watchdog)
}

fn ready(watchdog: &mut Pin<Box<Watchdog>>) -> bool {
    watchdog.as_mut().now_or_never().is_some()
}

/// Lets `d` pass, polling the watchdog as its connection's task would at
/// each of its wake-ups (every millisecond here); whether it became ready.
async fn pass(watchdog: &mut Pin<Box<Watchdog>>, d: Duration) -> bool {
    let step = Duration::from_millis(1);
    let mut left = d;
    while !left.is_zero() {
        let now = step.min(left);
        tokio::time::advance(now).await;
        tokio::task::yield_now().await;
        left -= now;
        if ready(watchdog) {
            return true;
        }
    }
    false
}

#[tokio::test(start_paused = true)]
async fn a_connection_without_requests_is_closed_at_the_timeout() {
    let (_activity, mut watchdog) = watch();
    assert!(!ready(&mut watchdog));
    assert!(!pass(&mut watchdog, TIMEOUT - Duration::from_millis(1)).await);
    assert!(pass(&mut watchdog, Duration::from_millis(2)).await);
}

#[tokio::test(start_paused = true)]
async fn after_its_last_answer_a_connection_waits_one_timeout_at_least_and_a_quarter_more_at_most()
{
    for offset in [0, 1, 700, 1250, 2499] {
        let (activity, mut watchdog) = watch();
        assert!(!pass(&mut watchdog, Duration::from_millis(offset)).await);
        activity.start(http::Version::HTTP_11);
        assert!(!pass(&mut watchdog, Duration::from_millis(300)).await);
        activity.answer();
        assert!(
            !pass(&mut watchdog, TIMEOUT).await,
            "closed within a timeout of the answer (offset {offset} ms)"
        );
        assert!(
            pass(&mut watchdog, TICK).await,
            "open 1¼ timeouts after the answer (offset {offset} ms)"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn requests_that_keep_coming_keep_the_connection_open() {
    let (activity, mut watchdog) = watch();
    // One request every 3 s (more than a tick, less than the timeout) for
    // ten timeouts.
    for _ in 0..34 {
        activity.start(http::Version::HTTP_11);
        assert!(!pass(&mut watchdog, Duration::from_millis(100)).await);
        activity.answer();
        assert!(!pass(&mut watchdog, Duration::from_millis(2900)).await);
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_being_answered_is_not_cut() {
    let (activity, mut watchdog) = watch();
    activity.start(http::Version::HTTP_11);
    assert!(!pass(&mut watchdog, TIMEOUT * 5).await);
    activity.answer();
    assert!(!pass(&mut watchdog, TIMEOUT).await);
    assert!(pass(&mut watchdog, TICK).await);
}

#[tokio::test(start_paused = true)]
async fn http2_is_bounded_until_its_first_stream_only() {
    let (activity, mut watchdog) = watch();
    assert!(!pass(&mut watchdog, Duration::from_secs(3)).await);
    activity.start(http::Version::HTTP_2);
    activity.answer();
    assert!(!pass(&mut watchdog, TIMEOUT * 10).await);

    let (_silent, mut watchdog) = watch();
    assert!(pass(&mut watchdog, TIMEOUT + Duration::from_millis(1)).await);
}

#[tokio::test(start_paused = true)]
async fn a_task_kept_from_running_does_not_count_ticks_it_did_not_wait() {
    let (activity, mut watchdog) = watch();
    activity.start(http::Version::HTTP_11);
    activity.answer();
    assert!(!ready(&mut watchdog));
    // Not polled for three timeouts (a starved runtime), then polled: the
    // ticks that passed meanwhile are one late wake-up, not twelve.
    tokio::time::advance(TIMEOUT * 3).await;
    tokio::task::yield_now().await;
    assert!(!ready(&mut watchdog));
    assert!(!pass(&mut watchdog, TIMEOUT - TICK - Duration::from_millis(1)).await);
    assert!(pass(&mut watchdog, TICK * 2).await);
}

#[tokio::test(start_paused = true)]
async fn a_timeout_under_the_ticks_still_ticks() {
    let activity = Arc::new(Activity::default());
    let watchdog = Watchdog::new(Duration::from_millis(2), activity);
    assert_eq!(watchdog.tick, Duration::from_millis(1));
}

use std::time::Duration;

use futures_util::FutureExt as _;
use hyper::rt::Timer as _;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(30);

fn ready(sleep: &mut Pin<Box<dyn hyper::rt::Sleep>>) -> bool {
    sleep.now_or_never().is_some()
}

async fn pass(d: Duration) {
    tokio::time::advance(d).await;
    // Let the time driver fire what is due.
    tokio::task::yield_now().await;
}

#[tokio::test(start_paused = true)]
async fn a_sleep_is_ready_at_its_deadline_and_not_before() {
    let timer = HeadTimer::default();
    let mut sleep = timer.sleep(TIMEOUT);
    assert!(!ready(&mut sleep));
    pass(TIMEOUT - Duration::from_millis(1)).await;
    assert!(!ready(&mut sleep));
    pass(Duration::from_millis(1)).await;
    assert!(ready(&mut sleep));
    // And stays ready.
    assert!(ready(&mut sleep));
}

#[tokio::test(start_paused = true)]
async fn an_earlier_dropped_deadline_firing_does_not_end_a_later_one() {
    // One request head after another on a keep-alive connection: each
    // sleep is polled, then dropped when its head arrives.
    let timer = HeadTimer::default();
    let mut first = timer.sleep(TIMEOUT);
    assert!(!ready(&mut first));
    drop(first);
    pass(Duration::from_secs(10)).await;
    let mut second = timer.sleep(TIMEOUT);
    assert!(!ready(&mut second));
    // The shared sleep fires at the first deadline (30 s): not the second's.
    pass(Duration::from_secs(25)).await;
    assert!(!ready(&mut second));
    pass(Duration::from_secs(4)).await;
    assert!(!ready(&mut second));
    pass(Duration::from_secs(1)).await;
    assert!(ready(&mut second));
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_than_the_armed_one_is_kept() {
    let timer = HeadTimer::default();
    let mut late = timer.sleep(TIMEOUT);
    assert!(!ready(&mut late));
    let mut early = timer.sleep(Duration::from_secs(5));
    assert!(!ready(&mut early));
    pass(Duration::from_secs(5)).await;
    assert!(ready(&mut early));
    assert!(!ready(&mut late));
    pass(TIMEOUT - Duration::from_secs(5)).await;
    assert!(ready(&mut late));
}

#[tokio::test(start_paused = true)]
async fn reset_moves_the_deadline_of_the_same_sleep() {
    let timer = HeadTimer::default();
    let mut sleep = timer.sleep(Duration::from_secs(1));
    pass(Duration::from_secs(1)).await;
    assert!(ready(&mut sleep));
    let later = timer.now() + TIMEOUT;
    timer.reset(&mut sleep, later);
    assert!(!ready(&mut sleep));
    pass(TIMEOUT - Duration::from_millis(1)).await;
    assert!(!ready(&mut sleep));
    pass(Duration::from_millis(1)).await;
    assert!(ready(&mut sleep));
}

#[tokio::test(start_paused = true)]
async fn a_ready_sleep_wakes_its_task() {
    let timer = HeadTimer::default();
    let sleep = timer.sleep(TIMEOUT);
    let started = tokio::time::Instant::now();
    sleep.await;
    assert_eq!(started.elapsed(), TIMEOUT);
}

/// As hyper waits: the task sleeps on the second head's sleep while the
/// shared sleep first fires for the first head's deadline, already
/// dropped; the re-armed sleep must still wake the task, at its own
/// deadline.
#[tokio::test(start_paused = true)]
async fn a_task_waiting_past_a_dropped_deadline_is_woken_at_its_own() {
    let timer = HeadTimer::default();
    let mut first = timer.sleep(TIMEOUT);
    assert!(!ready(&mut first));
    drop(first);
    pass(Duration::from_secs(10)).await;
    let second = timer.sleep(TIMEOUT);
    let started = tokio::time::Instant::now();
    tokio::time::timeout(2 * TIMEOUT, second)
        .await
        .expect("the second sleep never woke its task");
    assert_eq!(started.elapsed(), TIMEOUT);
}

//! Keeping trusted roots fresh from TUF repositories (`verify[].tuf`): one
//! task per source the policy in force names, refreshing at the source's
//! interval (sooner, backing off, after a failure). A refresh that brings a
//! root the policy in force was not compiled with records it in
//! [`TufRoots`] and wakes the reload task, which recompiles the policy with
//! it (a new generation, like a key file replaced on disk); a recompile
//! that fails is asked for again at the next refresh. A failed refresh
//! changes nothing: the last verified root, or the rule's starting root,
//! stays in force, `imagegate_trust_root_refreshes_total{result="error"}`
//! counts it and `imagegate_trust_root_sources_failing` shows it until a
//! refresh of that source succeeds.
//!
//! What each source has verified so far (its newest root, the versions a
//! refresh may not go below) lives as long as the source is in the policy:
//! a task restarted for another interval or CA, or by SIGHUP (which
//! refreshes every source at once), keeps the rollback floors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{IntCounter, IntGauge};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::metrics::ReloadResult;
use crate::policy::{CaBundle, Snapshot};
use crate::verify::tuf::{TufClient, TufRoots, TufStore};

/// The first wait after a failed refresh (doubling up to the interval).
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest one whole refresh (every download of it) may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// What the refresh tasks report to.
#[derive(Clone)]
struct Report {
    roots: Arc<TufRoots>,
    changed: Arc<Notify>,
    counters: [IntCounter; ReloadResult::ALL.len()],
    failing: IntGauge,
}

/// The refresh tasks, by source id.
pub(crate) struct TrustRefresh {
    report: Report,
    tasks: HashMap<[u8; 32], Task>,
    /// What each source of the policy keeps across task restarts.
    kept: HashMap<[u8; 32], Kept>,
}

/// A source's verified metadata and whether its last refresh failed.
#[derive(Clone)]
struct Kept {
    store: Arc<TufStore>,
    failing: Arc<Failing>,
}

struct Task {
    refresh: Duration,
    ca: CaBundle,
    handle: JoinHandle<()>,
}

impl TrustRefresh {
    pub(crate) fn new(
        counters: [IntCounter; ReloadResult::ALL.len()],
        failing: IntGauge,
    ) -> TrustRefresh {
        TrustRefresh {
            report: Report {
                roots: Arc::new(TufRoots::default()),
                changed: Arc::new(Notify::new()),
                counters,
                failing,
            },
            tasks: HashMap::new(),
            kept: HashMap::new(),
        }
    }

    /// The latest verified root of every source, for the compile.
    pub(crate) fn roots(&self) -> Arc<TufRoots> {
        self.report.roots.clone()
    }

    /// Resolves when the policy should be compiled again for a root.
    pub(crate) async fn changed(&self) {
        self.report.changed.notified().await;
    }

    /// Runs a task for every TUF source of `policy` and for no other
    /// (a source whose interval or registry CA changed is restarted; its
    /// last root and verified metadata are kept).
    pub(crate) fn sync(&mut self, policy: &Snapshot) {
        let sources = policy.tuf_sources();
        let ca = &policy.supply_chain().ca;
        let ids: Vec<[u8; 32]> = sources.iter().map(|s| s.id()).collect();
        self.tasks.retain(|id, task| {
            let keep = sources
                .iter()
                .any(|s| s.id() == *id && s.refresh() == task.refresh && task.ca == *ca);
            if !keep {
                task.handle.abort();
            }
            keep
        });
        self.kept.retain(|id, kept| {
            let keep = ids.contains(id);
            if !keep {
                kept.failing.retire();
            }
            keep
        });
        self.report.roots.retain(&ids);
        for source in sources {
            if self.tasks.contains_key(&source.id()) {
                continue;
            }
            let kept = self
                .kept
                .entry(source.id())
                .or_insert_with(|| Kept {
                    store: Arc::default(),
                    failing: Arc::new(Failing {
                        gauge: self.report.failing.clone(),
                        state: Mutex::default(),
                    }),
                })
                .clone();
            let client = Arc::new(TufClient::new(source.clone(), ca, kept.store));
            let handle = tokio::spawn(run(client, self.report.clone(), kept.failing));
            self.tasks.insert(
                source.id(),
                Task {
                    refresh: source.refresh(),
                    ca: ca.clone(),
                    handle,
                },
            );
        }
    }

    /// Ends every task, so that the next [`TrustRefresh::sync`] starts them
    /// again and each source is refreshed at once (SIGHUP); what the
    /// sources verified so far is kept.
    pub(crate) fn restart(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.handle.abort();
        }
    }
}

impl Drop for TrustRefresh {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.handle.abort();
        }
        for kept in self.kept.values() {
            kept.failing.retire();
        }
    }
}

/// Aborts a task when dropped (the refresh task is aborted while it waits
/// for an attempt: the attempt goes too).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts a source in `imagegate_trust_root_sources_failing` while its
/// last refresh failed: kept with the source, so a task restarted for
/// another interval or CA does not clear it, and retired when the source
/// leaves the policy (a late report of an aborted task changes nothing).
struct Failing {
    gauge: IntGauge,
    /// (failing now, retired).
    state: Mutex<(bool, bool)>,
}

impl Failing {
    fn set(&self, failing: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (now, retired) = &mut *state;
        if *retired || *now == failing {
            return;
        }
        *now = failing;
        if failing {
            self.gauge.inc();
        } else {
            self.gauge.dec();
        }
    }

    fn retire(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 && !state.1 {
            self.gauge.dec();
        }
        *state = (false, true);
    }
}

/// Refreshes one source until aborted.
async fn run(client: Arc<TufClient>, report: Report, failing: Arc<Failing>) {
    let source = client.source().clone();
    let every = source.refresh();
    let first_retry = FIRST_RETRY.min(every);
    let mut retry = first_retry;
    loop {
        // On a task of its own, so that a panic in the client is one
        // failed refresh, not the end of refreshing.
        let mut attempt = AbortOnDrop(tokio::spawn({
            let client = client.clone();
            async move { tokio::time::timeout(REFRESH_TIMEOUT, client.refresh()).await }
        }));
        let result = match (&mut attempt.0).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!("no answer within {REFRESH_TIMEOUT:?}")),
            Err(join) => Err(format!("the refresh failed: {join}")),
        };
        match result {
            Ok(text) => {
                report.counters[ReloadResult::Success.index()].inc();
                failing.set(false);
                if report.roots.put(source.id(), &text) {
                    tracing::info!(
                        url = source.url(),
                        target = source.target(),
                        "trusted root refreshed over TUF: a root not yet in force, recompiling the policy"
                    );
                    report.changed.notify_one();
                } else {
                    tracing::debug!(url = source.url(), "trusted root refreshed, unchanged");
                }
                retry = first_retry;
                tokio::time::sleep(every).await;
            }
            Err(error) => {
                report.counters[ReloadResult::Error.index()].inc();
                failing.set(true);
                tracing::warn!(
                    url = source.url(),
                    target = source.target(),
                    error = %error,
                    retry_in = ?retry,
                    "trusted root refresh failed, the last verified root stays in force"
                );
                tokio::time::sleep(retry).await;
                retry = retry.saturating_mul(2).min(every);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_source_is_counted_once_until_it_recovers_or_leaves() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let a = Failing {
            gauge: gauge.clone(),
            state: Mutex::default(),
        };
        let b = Failing {
            gauge: gauge.clone(),
            state: Mutex::default(),
        };
        a.set(true);
        a.set(true);
        b.set(true);
        assert_eq!(gauge.get(), 2);
        a.set(false);
        assert_eq!(gauge.get(), 1);
        b.retire();
        assert_eq!(gauge.get(), 0);
        b.set(true);
        assert_eq!(gauge.get(), 0, "a late report for a source that left");
        a.retire();
        a.retire();
        assert_eq!(gauge.get(), 0);
    }
}

//! Keeping trusted roots fresh from TUF repositories (`verify[].tuf`): one
//! task per source the policy in force names, refreshing at the source's
//! interval (sooner, backing off, after a failure). A refresh that brings a
//! different verified root records it in [`TufRoots`] and wakes the reload
//! task, which recompiles the policy with it (a new generation, like a key
//! file replaced on disk). A failed refresh changes nothing: the last
//! verified root, or the rule's starting root, stays in force, and
//! `imagegate_trust_root_refreshes_total{result="error"}` counts it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::metrics::ReloadResult;
use crate::policy::{CaBundle, Snapshot};
use crate::verify::tuf::{TufClient, TufRoots};

/// The first wait after a failed refresh (doubling up to the interval).
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest one whole refresh (every download of it) may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// The refresh tasks, by source id.
pub(crate) struct TrustRefresh {
    roots: Arc<TufRoots>,
    changed: Arc<Notify>,
    counters: [IntCounter; ReloadResult::ALL.len()],
    tasks: HashMap<[u8; 32], Task>,
}

struct Task {
    refresh: Duration,
    ca: CaBundle,
    handle: JoinHandle<()>,
}

impl TrustRefresh {
    pub(crate) fn new(counters: [IntCounter; ReloadResult::ALL.len()]) -> TrustRefresh {
        TrustRefresh {
            roots: Arc::new(TufRoots::default()),
            changed: Arc::new(Notify::new()),
            counters,
            tasks: HashMap::new(),
        }
    }

    /// The latest verified root of every source, for the compile.
    pub(crate) fn roots(&self) -> Arc<TufRoots> {
        self.roots.clone()
    }

    /// Resolves when a refresh brought a different root.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Runs a task for every TUF source of `policy` and for no other
    /// (a source whose interval or registry CA changed is restarted; its
    /// last root is kept).
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
        self.roots.retain(&ids);
        for source in sources {
            if self.tasks.contains_key(&source.id()) {
                continue;
            }
            let client = Arc::new(TufClient::new(source.clone(), ca));
            let handle = tokio::spawn(run(
                client,
                self.roots.clone(),
                self.changed.clone(),
                self.counters.clone(),
            ));
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
}

impl Drop for TrustRefresh {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.handle.abort();
        }
    }
}

/// Refreshes one source until aborted.
async fn run(
    client: Arc<TufClient>,
    roots: Arc<TufRoots>,
    changed: Arc<Notify>,
    counters: [IntCounter; ReloadResult::ALL.len()],
) {
    let source = client.source().clone();
    let every = source.refresh();
    let first_retry = FIRST_RETRY.min(every);
    let mut retry = first_retry;
    loop {
        // On a task of its own, so that a panic in the client is one
        // failed refresh, not the end of refreshing.
        let attempt = tokio::spawn({
            let client = client.clone();
            async move { tokio::time::timeout(REFRESH_TIMEOUT, client.refresh()).await }
        });
        let result = match attempt.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(format!("no answer within {REFRESH_TIMEOUT:?}")),
            Err(join) => Err(format!("the refresh failed: {join}")),
        };
        match result {
            Ok(text) => {
                counters[ReloadResult::Success.index()].inc();
                if roots.put(source.id(), &text) {
                    tracing::info!(
                        url = source.url(),
                        target = source.target(),
                        "trusted root refreshed over TUF: a new root, recompiling the policy"
                    );
                    changed.notify_one();
                } else {
                    tracing::debug!(url = source.url(), "trusted root refreshed, unchanged");
                }
                retry = first_retry;
                tokio::time::sleep(every).await;
            }
            Err(error) => {
                counters[ReloadResult::Error.index()].inc();
                tracing::warn!(
                    url = source.url(),
                    target = source.target(),
                    error = %error,
                    retry_in = ?retry,
                    "trusted root refresh failed, the last verified root stays in force"
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(every);
            }
        }
    }
}

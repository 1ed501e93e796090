//! Noticing that files changed: `notify` events on each file's parent
//! directory, plus a periodic re-stat in case an event is missed.
//!
//! The parent directory is watched, not the file, because the two ways
//! Kubernetes replaces mounted files both swap directory entries: an atomic
//! rename over the file (cert-manager, editors) and the `..data` symlink
//! swap of ConfigMap and Secret volumes, where the file itself is a symlink
//! that never changes. A change is judged by a fingerprint of the file the
//! path resolves to (device, inode, size, modification time).
//!
//! Events are filtered by name on the watcher's own thread: only entries
//! named like a watched file, and the `..`-prefixed entries of Kubernetes'
//! atomic writer (`..data`, `..2026_11_27_…`), wake the async side. A busy
//! neighbour in the same directory (a log file written beside the
//! certificates, say) would otherwise wake the runtime on every write.
//!
//! This module only reports changes; reading and applying files is the
//! caller's job.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

/// What identifies one version of a file; `None` when it cannot be stat'ed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    // `metadata` follows symlinks, so a `..data` swap shows as a new inode.
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let (device, inode) = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let (device, inode) = (0, 0);
    Some(Fingerprint {
        device,
        inode,
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Watches a set of files; [`FileWatch::changed`] resolves when any differs
/// from the last time it was looked at.
pub(crate) struct FileWatch {
    paths: Vec<PathBuf>,
    seen: Vec<Option<Fingerprint>>,
    events: mpsc::Receiver<()>,
    // Kept alive for its side effect: dropping it stops the events.
    _watcher: Option<RecommendedWatcher>,
    poll: tokio::time::Interval,
    debounce: Duration,
}

impl FileWatch {
    /// Starts watching. If `notify` cannot watch (no inotify instances
    /// left, a directory missing), the periodic re-stat still works, and
    /// the failure is logged.
    pub(crate) fn new(paths: Vec<PathBuf>, poll: Duration, debounce: Duration) -> FileWatch {
        // Capacity 1: a pending wake-up is all that matters, not how many.
        let (tx, events) = mpsc::channel(1);
        let names: BTreeSet<OsString> = paths
            .iter()
            .filter_map(|p| p.file_name().map(ToOwned::to_owned))
            .collect();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| relevant(&e, &names)) {
                let _ = tx.try_send(());
            }
        });
        let watcher = match watcher {
            Ok(mut watcher) => {
                let dirs: BTreeSet<PathBuf> = paths.iter().map(|p| parent(p)).collect();
                for dir in dirs {
                    if let Err(error) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
                        tracing::warn!(
                            dir = %dir.display(), %error,
                            "cannot watch directory; falling back to periodic checks"
                        );
                    }
                }
                Some(watcher)
            }
            Err(error) => {
                tracing::warn!(%error, "file watching unavailable; falling back to periodic checks");
                None
            }
        };
        let mut poll = tokio::time::interval_at(Instant::now() + poll, poll);
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let seen = paths.iter().map(|p| fingerprint(p)).collect();
        FileWatch {
            paths,
            seen,
            events,
            _watcher: watcher,
            poll,
            debounce,
        }
    }

    /// Waits until at least one file changed and returns the indexes (into
    /// the paths given to [`FileWatch::new`]) of those that did.
    ///
    /// After an event it waits for a quiet spell of `debounce` (bounded to
    /// twenty of them) so that a burst, such as a certificate and its key
    /// renamed one after the other, ends in one look.
    pub(crate) async fn changed(&mut self) -> Vec<usize> {
        loop {
            tokio::select! {
                event = self.events.recv() => {
                    if event.is_none() {
                        // The watcher is gone; only the periodic checks remain.
                        self.poll.tick().await;
                    } else {
                        self.settle().await;
                    }
                }
                _ = self.poll.tick() => {}
            }
            let changed = self.compare();
            if !changed.is_empty() {
                return changed;
            }
        }
    }

    async fn settle(&mut self) {
        let deadline = Instant::now() + self.debounce * 20;
        loop {
            let quiet = tokio::time::sleep(self.debounce);
            tokio::select! {
                event = self.events.recv() => {
                    if event.is_none() || Instant::now() >= deadline {
                        return;
                    }
                }
                () = quiet => return,
            }
        }
    }

    fn compare(&mut self) -> Vec<usize> {
        let mut changed = Vec::new();
        for (i, (path, seen)) in self.paths.iter().zip(self.seen.iter_mut()).enumerate() {
            let now = fingerprint(path);
            if now != *seen {
                *seen = now;
                changed.push(i);
            }
        }
        changed
    }
}

/// Whether an event may concern one of the watched files (by their file
/// names): the caller re-stats them when it does.
fn relevant(event: &notify::Event, names: &BTreeSet<OsString>) -> bool {
    // Opening or reading a file changes nothing, and a process that keeps
    // reading files here (ourselves included) would otherwise keep a burst
    // from ever settling.
    if let EventKind::Access(kind) = event.kind
        && kind != AccessKind::Close(AccessMode::Write)
    {
        return false;
    }
    // No paths: a queue overflow or a rescan request, which may hide anything.
    event.paths.is_empty()
        || event.paths.iter().any(|path| {
            path.file_name().is_none_or(|name| {
                names.contains(name) || name.as_encoded_bytes().starts_with(b"..")
            })
        })
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests;

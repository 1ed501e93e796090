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
mod tests {
    use super::*;

    async fn expect_change(watch: &mut FileWatch, want: &[usize]) {
        let got = tokio::time::timeout(Duration::from_secs(10), watch.changed())
            .await
            .expect("change noticed within 10 s");
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn sees_atomic_rename_and_symlink_swap() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "one").unwrap();
        // ConfigMap layout: b.yaml -> ..data/b.yaml, ..data -> ..v1
        std::fs::create_dir(dir.path().join("..v1")).unwrap();
        std::fs::write(dir.path().join("..v1/b.yaml"), "one").unwrap();
        std::os::unix::fs::symlink("..v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/b.yaml", dir.path().join("b.yaml")).unwrap();

        let mut watch = FileWatch::new(
            vec![a.clone(), dir.path().join("b.yaml")],
            Duration::from_secs(3600),
            Duration::from_millis(50),
        );

        let tmp = dir.path().join(".a.tmp");
        std::fs::write(&tmp, "two").unwrap();
        std::fs::rename(&tmp, &a).unwrap();
        expect_change(&mut watch, &[0]).await;

        std::fs::create_dir(dir.path().join("..v2")).unwrap();
        std::fs::write(dir.path().join("..v2/b.yaml"), "two").unwrap();
        std::os::unix::fs::symlink("..v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        expect_change(&mut watch, &[1]).await;
    }

    #[tokio::test]
    async fn periodic_check_works_without_events() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "one").unwrap();
        let mut watch = FileWatch::new(
            vec![a.clone()],
            Duration::from_millis(100),
            Duration::from_millis(50),
        );
        // Stop the event source to prove the periodic path alone suffices.
        watch._watcher = None;
        std::fs::remove_file(&a).unwrap();
        expect_change(&mut watch, &[0]).await;
        std::fs::write(&a, "back").unwrap();
        expect_change(&mut watch, &[0]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_in_the_directory_do_not_delay_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "one").unwrap();
        std::fs::write(&b, "other").unwrap();
        let mut watch = FileWatch::new(
            vec![a.clone()],
            Duration::from_secs(3600),
            Duration::from_millis(100),
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = std::thread::spawn({
            let (stop, a, b) = (stop.clone(), a.clone(), b.clone());
            move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::read(&a);
                    let _ = std::fs::read(&b);
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        let tmp = dir.path().join("a.tmp");
        std::fs::write(&tmp, "two").unwrap();
        std::fs::rename(&tmp, &a).unwrap();
        let started = Instant::now();
        expect_change(&mut watch, &[0]).await;
        // The burst cap is 20 x 100 ms; without filtering reads it is hit.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reader.join().unwrap();
    }

    #[test]
    fn only_events_naming_a_watched_file_are_relevant() {
        use notify::event::{CreateKind, DataChange, ModifyKind, RenameMode};
        let names: BTreeSet<OsString> = ["tls.crt", "policy.yaml"].map(OsString::from).into();
        let event = |kind: EventKind, paths: &[&str]| {
            let mut event = notify::Event::new(kind);
            for p in paths {
                event = event.add_path(PathBuf::from(p));
            }
            event
        };
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let created = EventKind::Create(CreateKind::Any);
        assert!(relevant(&event(write, &["/certs/tls.crt"]), &names));
        assert!(relevant(
            &event(renamed, &["/certs/.tls.tmp", "/certs/tls.crt"]),
            &names
        ));
        assert!(relevant(
            &event(renamed, &["/cm/..data_tmp", "/cm/..data"]),
            &names
        ));
        assert!(relevant(
            &event(created, &["/cm/..2026_11_27_03_00_00.1"]),
            &names
        ));
        assert!(
            relevant(&event(EventKind::Other, &[]), &names),
            "rescan/overflow"
        );
        assert!(!relevant(&event(write, &["/certs/h2load.log"]), &names));
        assert!(!relevant(&event(created, &["/certs/tls.crt.bak"]), &names));
        assert!(!relevant(&event(created, &["/certs/.tls.crt"]), &names));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert!(!relevant(&event(read, &["/certs/tls.crt"]), &names));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(relevant(&event(closed, &["/certs/tls.crt"]), &names));
    }

    #[tokio::test]
    async fn unrelated_entries_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "one").unwrap();
        let mut watch = FileWatch::new(
            vec![a.clone()],
            Duration::from_secs(3600),
            Duration::from_millis(20),
        );
        std::fs::write(dir.path().join("other"), "x").unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(500), watch.changed()).await;
        assert!(quiet.is_err(), "an unrelated file must not report a change");
    }
}

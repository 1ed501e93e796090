//! `serve --record FILE`: every review judged, appended as one JSON line
//! (`RecordedReview`, which `imagegate replay` reads), for clusters whose
//! audit policy does not log pod bodies.
//!
//! Writing happens on its own thread: a request only copies its body into
//! a bounded queue (`try_send`; a full queue drops the record and counts
//! it, never delaying an answer). The file rotates at `max_bytes`: `FILE`
//! becomes `FILE.1`, `FILE.1` becomes `FILE.2`, ..., keeping `keep` old
//! files, so the space used is at most `(keep + 1) × max_bytes` and a bit.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;

use crate::review::Api;

/// Records waiting to be written; past this they are dropped.
const QUEUE: usize = 4096;
/// Bytes of bodies waiting to be written; past this records are dropped
/// (a burst of large bodies must not grow the server's memory).
const QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Where and how much to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordConfig {
    /// The file appended to.
    pub path: PathBuf,
    /// Size at which the file rotates.
    pub max_bytes: u64,
    /// Rotated files kept (`FILE.1` ... `FILE.keep`).
    pub keep: u32,
}

struct Entry {
    time: SystemTime,
    api: Api,
    allowed: bool,
    generation: u64,
    copy: Recording,
}

/// A body copied for the record, its bytes counted in the queue's budget
/// for as long as it lives: written, dropped with a request that never got
/// its answer, or left in the queue when the writer stops, it gives them
/// back.
#[derive(Debug)]
pub struct Recording {
    body: Vec<u8>,
    queued: Arc<AtomicUsize>,
}

impl Drop for Recording {
    fn drop(&mut self) {
        self.queued.fetch_sub(self.body.len(), Ordering::Relaxed);
    }
}

/// The recording side held by the server.
#[derive(Debug)]
pub struct Recorder {
    queue: SyncSender<Entry>,
    /// `imagegate_records_dropped_total`.
    dropped: prometheus::IntCounter,
    /// Bytes of the bodies queued (see [`QUEUE_BYTES`]).
    queued: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Opens (appends to) the file and starts the writer thread; records
    /// dropped are counted in `dropped`.
    pub fn start(
        config: RecordConfig,
        dropped: prometheus::IntCounter,
    ) -> std::io::Result<Recorder> {
        let file = open(&config.path)?;
        let written = file.metadata()?.len();
        let (queue, rx) = sync_channel(QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        std::thread::Builder::new()
            .name("imagegate-record".to_owned())
            .spawn(move || write_loop(&config, file, written, &rx))?;
        Ok(Recorder {
            queue,
            dropped,
            queued,
        })
    }

    /// A copy of `body` for the record, when the queue's byte budget has
    /// room for it (else the record is dropped and counted).
    pub fn copy(&self, body: &[u8]) -> Option<Recording> {
        let len = body.len();
        let before = self.queued.fetch_add(len, Ordering::Relaxed);
        if before + len > QUEUE_BYTES {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.count_dropped();
            return None;
        }
        Some(Recording {
            body: body.to_vec(),
            queued: Arc::clone(&self.queued),
        })
    }

    fn count_dropped(&self) {
        self.dropped.inc();
        let n = self.dropped.get();
        if n.is_power_of_two() {
            tracing::warn!(
                dropped = n,
                "review recording cannot keep up; records dropped"
            );
        }
    }

    /// Queues one judged review (its body as received, before parsing).
    pub fn record(&self, api: Api, allowed: bool, generation: u64, copy: Recording) {
        let entry = Entry {
            time: SystemTime::now(),
            api,
            allowed,
            generation,
            copy,
        };
        if let Err(TrySendError::Full(_)) = self.queue.try_send(entry) {
            self.count_dropped();
        }
    }
}

/// Opens for appending; a new file is readable by its owner only: the
/// records hold pod specs and user names, like the audit log.
fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn write_loop(config: &RecordConfig, file: File, mut written: u64, rx: &Receiver<Entry>) {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut line = Vec::with_capacity(64 * 1024);
    while let Ok(entry) = rx.recv() {
        let mut next = Some(entry);
        while let Some(entry) = next {
            encode(&entry, &mut line);
            drop(entry);
            if written > 0 && written + line.len() as u64 > config.max_bytes {
                match rotate(config, out) {
                    Ok(file) => {
                        out = BufWriter::with_capacity(256 * 1024, file);
                        written = 0;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, path = %config.path.display(), "cannot rotate the review record; recording stops");
                        return;
                    }
                }
            }
            if let Err(e) = out.write_all(&line) {
                tracing::error!(error = %e, path = %config.path.display(), "cannot write the review record; recording stops");
                return;
            }
            written += line.len() as u64;
            next = rx.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            tracing::error!(error = %e, "cannot write the review record; recording stops");
            return;
        }
    }
}

fn rotate(config: &RecordConfig, out: BufWriter<File>) -> std::io::Result<File> {
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    file.flush()?;
    drop(file);
    let numbered = |n: u32| {
        let mut name = config.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    if config.keep == 0 {
        std::fs::remove_file(&config.path)?;
    } else {
        for n in (1..config.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&config.path, numbered(1))?;
    }
    open(&config.path)
}

/// One `RecordedReview` line. The body decoded as JSON, so it is JSON; a
/// newline in it can only be whitespace between tokens (inside strings it
/// is escaped), so it is turned into a space to keep one line per record.
fn encode(entry: &Entry, line: &mut Vec<u8>) {
    line.clear();
    let time = humantime::format_rfc3339_millis(entry.time);
    let _ = write!(
        line,
        r#"{{"apiVersion":"imagegate.dev/v1alpha1","kind":"RecordedReview","time":"{time}","api":"{}","allowed":{},"policyGeneration":{},"review":"#,
        entry.api.as_str(),
        entry.allowed,
        entry.generation
    );
    line.extend(
        entry
            .copy
            .body
            .iter()
            .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
    );
    line.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests;

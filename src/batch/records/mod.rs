//! Recorded reviews, one JSON object per line: kube-apiserver audit events
//! (`audit.k8s.io/v1` and `v1beta1`), AdmissionReview and ImageReview
//! bodies, and the `RecordedReview` lines `serve --record` writes. Files
//! may be gzip-compressed (recognised by their first bytes).
//!
//! An audit event is judged as the AdmissionReview the apiserver would have
//! sent for it (the same `/validate` path: kinds, subresources, users);
//! each `auditID` once, whichever stage is logged first. Lines that hold no
//! pod-bearing object are counted by why, never fatal. Reading streams:
//! one line at a time, each at most [`MAX_LINE_BYTES`].

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};

use serde_json::value::RawValue;

use crate::review::Api;

mod classify;

use classify::classify;

/// Longest line read; a longer one is skipped (counted as `too_long`).
pub const MAX_LINE_BYTES: usize = 32 * 1024 * 1024;

/// How many recent `auditID`s are remembered to judge each request once.
/// The stages of one request are logged within its duration, so a window
/// this size finds them in any real log while memory stays bounded.
const AUDIT_ID_WINDOW: usize = 262_144;

/// One review to judge again.
#[derive(Debug)]
pub struct Record {
    /// `FILE:LINE`.
    pub source: String,
    /// Which protocol the body is (an audit event becomes an
    /// AdmissionReview).
    pub api: Api,
    /// The review body (an AdmissionReview or ImageReview).
    pub body: Vec<u8>,
}

/// Why a line was not judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// Not JSON, or not an object.
    Broken,
    /// Longer than [`MAX_LINE_BYTES`].
    TooLong,
    /// A JSON object of a kind this command does not read.
    UnknownKind,
    /// An audit event for a resource without pods.
    OtherResource,
    /// An audit event whose verb is not `create` or `update`.
    OtherVerb,
    /// An audit event without `requestObject` (`Metadata` level, or
    /// `None`).
    NoObject,
    /// A later stage of an audit event already judged.
    RepeatedStage,
    /// A `patch` logged without its result (`responseObject`, logged at
    /// `RequestResponse` level only): the patch alone does not say what runs.
    PatchWithoutResult,
    /// A review with no pods to judge: `DELETE`, `CONNECT`, a subresource
    /// other than a Pod's `ephemeralcontainers`, a kind without pods.
    NotJudged,
}

impl Skip {
    /// Every reason, in report order.
    pub const ALL: [Skip; 9] = [
        Skip::Broken,
        Skip::TooLong,
        Skip::UnknownKind,
        Skip::OtherResource,
        Skip::OtherVerb,
        Skip::NoObject,
        Skip::RepeatedStage,
        Skip::PatchWithoutResult,
        Skip::NotJudged,
    ];

    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Broken => "broken",
            Skip::TooLong => "too_long",
            Skip::UnknownKind => "unknown_kind",
            Skip::OtherResource => "other_resource",
            Skip::OtherVerb => "other_verb",
            Skip::NoObject => "no_request_object",
            Skip::RepeatedStage => "repeated_stage",
            Skip::PatchWithoutResult => "patch_without_result",
            Skip::NotJudged => "not_judged",
        }
    }

    /// The index of this reason in [`Skip::ALL`].
    pub fn index(self) -> usize {
        Skip::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Opens `reader` as plain or gzip-compressed text (by its magic bytes).
pub fn open(reader: impl Read + 'static) -> std::io::Result<Box<dyn BufRead>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else {
        Box::new(buffered)
    })
}

/// Reads the records of one file: each judged-to-be review goes to
/// `record`, each line that is not one to `skip`. Returns the read error
/// that ended the file early (a truncated gzip stream, say), if any; what
/// was read before it is kept.
pub fn read(
    file: &str,
    reader: &mut dyn BufRead,
    seen: &mut AuditIds,
    mut record: impl FnMut(Record),
    mut skip: impl FnMut(Skip),
) -> Option<std::io::Error> {
    let mut line = Vec::with_capacity(64 * 1024);
    let mut number = 0u64;
    let mut first = true;
    loop {
        number += 1;
        match read_line(reader, &mut line) {
            Ok(Line::End) => return None,
            Ok(Line::TooLong) => skip(Skip::TooLong),
            Ok(Line::Text) => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                // A file whose first line is not a whole JSON value but
                // starts one holds pretty-printed (or concatenated)
                // documents: read it as a stream of values instead.
                if std::mem::take(&mut first)
                    && serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_err()
                    && matches!(line.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{'))
                {
                    line.push(b'\n');
                    let rest = std::io::Cursor::new(std::mem::take(&mut line)).chain(reader);
                    return stream(file, rest, seen, &mut record, &mut skip);
                }
                classify(&line, seen, &mut |found| match found {
                    Ok((api, body)) => record(Record {
                        source: format!("{file}:{number}"),
                        api,
                        body: body.unwrap_or_else(|| line.clone()),
                    }),
                    Err(why) => skip(why),
                });
            }
            Err(e) => return Some(e),
        }
    }
}

/// Reads JSON values one after the other, whatever their layout; a value
/// that is not JSON ends the file (there is no line to resume at), as does
/// one larger than [`MAX_LINE_BYTES`]. Sources are `FILE#N`, the N-th value.
fn stream(
    file: &str,
    reader: impl Read,
    seen: &mut AuditIds,
    record: &mut impl FnMut(Record),
    skip: &mut impl FnMut(Skip),
) -> Option<std::io::Error> {
    let limit = std::rc::Rc::new(std::cell::Cell::new(MAX_LINE_BYTES as u64));
    let reader = Capped {
        inner: reader,
        read: 0,
        limit: std::rc::Rc::clone(&limit),
    };
    let mut values = serde_json::Deserializer::from_reader(reader).into_iter::<Box<RawValue>>();
    let mut number = 0u64;
    loop {
        let value = match values.next() {
            None => return None,
            Some(Ok(value)) => value,
            Some(Err(e)) => {
                return Some(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("value {} is not JSON: {e}", number + 1),
                ));
            }
        };
        number += 1;
        limit.set(values.byte_offset() as u64 + MAX_LINE_BYTES as u64);
        let bytes = value.get().as_bytes();
        classify(bytes, seen, &mut |found| match found {
            Ok((api, body)) => record(Record {
                source: format!("{file}#{number}"),
                api,
                body: body.unwrap_or_else(|| bytes.to_vec()),
            }),
            Err(why) => skip(why),
        });
    }
}

/// A reader that fails past `limit` bytes read in all.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read >= self.limit.get() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a value is larger than {} MiB", MAX_LINE_BYTES >> 20),
            ));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

enum Line {
    Text,
    TooLong,
    End,
}

/// One line into `buf` (without its newline); a line past the cap is read
/// through and dropped.
fn read_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Text,
            });
        }
        any = true;
        let (part, done) = match memchr(chunk) {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        if !too_long {
            if buf.len() + part.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(part);
            }
        }
        let ended = done > part.len();
        reader.consume(done);
        if ended {
            return Ok(if too_long { Line::TooLong } else { Line::Text });
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// The recent `auditID`s (as hashes), to judge each request once.
#[derive(Debug, Default)]
pub struct AuditIds {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl AuditIds {
    /// Whether `id` was seen (and remembers it).
    fn repeated(&mut self, id: &str) -> bool {
        let key = self.hasher.hash_one(id);
        if !self.set.insert(key) {
            return true;
        }
        self.order.push_back(key);
        if self.order.len() > AUDIT_ID_WINDOW
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        false
    }
}

#[cfg(test)]
mod tests;

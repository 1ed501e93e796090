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

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};

use serde::Deserialize;
use serde_json::value::RawValue;

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
    /// Which protocol the body is.
    pub api: RecordApi,
    /// The review body (an AdmissionReview or ImageReview).
    pub body: Vec<u8>,
}

/// The protocol of a [`Record`]'s body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordApi {
    /// AdmissionReview (also what an audit event becomes).
    Admission,
    /// ImageReview.
    Image,
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

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "apiVersion")]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "auditID")]
    audit_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    verb: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "objectRef")]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(borrow)]
    user: Option<&'a RawValue>,
    /// The user the request was made as, when impersonated: the one the
    /// apiserver names in the AdmissionReview.
    #[serde(borrow, rename = "impersonatedUser")]
    impersonated_user: Option<&'a RawValue>,
    #[serde(borrow, rename = "requestObject")]
    request_object: Option<&'a RawValue>,
    #[serde(borrow, rename = "responseObject")]
    response_object: Option<&'a RawValue>,
    #[serde(rename = "responseStatus")]
    response_status: Option<Status>,
    /// A `RecordedReview`'s body.
    #[serde(borrow)]
    review: Option<&'a RawValue>,
    /// An `EventList`'s events (what the audit webhook backend sends).
    #[serde(borrow)]
    items: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Status {
    code: Option<u16>,
}

#[derive(Deserialize)]
struct ObjectRef<'a> {
    #[serde(borrow)]
    resource: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "apiGroup")]
    api_group: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subresource: Option<Cow<'a, str>>,
}

type Found = Result<(RecordApi, Option<Vec<u8>>), Skip>;

/// What a line is: reviews to judge (each with its body when it is not the
/// line itself), or why not; an `EventList` is each of its events.
fn classify(line: &[u8], seen: &mut AuditIds, found: &mut impl FnMut(Found)) {
    let head: Head<'_> = match serde_json::from_slice(line) {
        Ok(head) => head,
        Err(_) => return found(Err(Skip::Broken)),
    };
    if is_audit(&head, "EventList") {
        for item in head.items.as_deref().unwrap_or_default() {
            found(match serde_json::from_str::<Head<'_>>(item.get()) {
                Ok(event) if is_audit(&event, "Event") => self::event(&event, seen),
                Ok(_) => Err(Skip::UnknownKind),
                Err(_) => Err(Skip::Broken),
            });
        }
        return;
    }
    found(one(&head, seen));
}

/// Whether `head` is an audit object of `kind` (`apiVersion`
/// `audit.k8s.io/v1` or `v1beta1`, or none: the audit webhook backend's
/// events are often stored without it).
fn is_audit(head: &Head<'_>, kind: &str) -> bool {
    head.kind.as_deref() == Some(kind)
        && matches!(
            head.api_version.as_deref(),
            None | Some("audit.k8s.io/v1" | "audit.k8s.io/v1beta1")
        )
}

fn one(head: &Head<'_>, seen: &mut AuditIds) -> Found {
    if is_audit(head, "Event") {
        return event(head, seen);
    }
    let kind = head.kind.as_deref().unwrap_or("");
    let api_version = head.api_version.as_deref().unwrap_or("");
    match (api_version, kind) {
        ("imagegate.dev/v1alpha1", "RecordedReview") => {
            let review = head.review.ok_or(Skip::Broken)?;
            let body = review.get().as_bytes().to_vec();
            let inner: Head<'_> = serde_json::from_slice(&body).map_err(|_| Skip::Broken)?;
            match inner.kind.as_deref() {
                Some("AdmissionReview") => Ok((RecordApi::Admission, Some(body))),
                Some("ImageReview") => Ok((RecordApi::Image, Some(body))),
                _ => Err(Skip::UnknownKind),
            }
        }
        (_, "AdmissionReview") => Ok((RecordApi::Admission, None)),
        (_, "ImageReview") => Ok((RecordApi::Image, None)),
        _ => Err(Skip::UnknownKind),
    }
}

/// The kind of a pod-bearing resource (`None` for others).
fn kind_of(group: &str, resource: &str) -> Option<&'static str> {
    Some(match (group, resource) {
        ("", "pods") => "Pod",
        ("", "podtemplates") => "PodTemplate",
        ("", "replicationcontrollers") => "ReplicationController",
        ("apps" | "extensions", "deployments") => "Deployment",
        ("apps" | "extensions", "replicasets") => "ReplicaSet",
        ("apps" | "extensions", "daemonsets") => "DaemonSet",
        ("apps", "statefulsets") => "StatefulSet",
        ("batch", "jobs") => "Job",
        ("batch", "cronjobs") => "CronJob",
        _ => return None,
    })
}

/// An audit event as the AdmissionReview the apiserver would have sent.
fn event(head: &Head<'_>, seen: &mut AuditIds) -> Found {
    let object_ref = head.object_ref.as_ref().ok_or(Skip::OtherResource)?;
    let group = object_ref.api_group.as_deref().unwrap_or("");
    let kind =
        kind_of(group, object_ref.resource.as_deref().unwrap_or("")).ok_or(Skip::OtherResource)?;
    // A patch (`kubectl apply`, `set image`, server-side apply) is judged by
    // its result, the object as stored, when the event logged it.
    let (operation, object) = match head.verb.as_deref() {
        Some("create") => ("CREATE", head.request_object.ok_or(Skip::NoObject)?),
        Some("update") => ("UPDATE", head.request_object.ok_or(Skip::NoObject)?),
        Some("patch") => (
            "UPDATE",
            head.response_object
                .filter(|_| {
                    // A failed patch logs a Status, not the object.
                    head.response_status
                        .as_ref()
                        .and_then(|s| s.code)
                        .is_some_and(|code| (200..300).contains(&code))
                })
                .ok_or(Skip::PatchWithoutResult)?,
        ),
        _ => return Err(Skip::OtherVerb),
    };
    let id = head.audit_id.as_deref().unwrap_or("");
    if !id.is_empty() && seen.repeated(id) {
        return Err(Skip::RepeatedStage);
    }
    let text = |s: Option<&Cow<'_, str>>| serde_json::to_string(s.map_or("", |s| s.as_ref()));
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":{},"kind":{{"group":{},"version":"","kind":"{kind}"}},"namespace":{},"name":{},"subResource":{},"operation":"{operation}","userInfo":{},"object":{}}}}}"#,
        serde_json::to_string(id).map_err(|_| Skip::Broken)?,
        serde_json::to_string(group).map_err(|_| Skip::Broken)?,
        text(object_ref.namespace.as_ref()).map_err(|_| Skip::Broken)?,
        text(object_ref.name.as_ref()).map_err(|_| Skip::Broken)?,
        text(object_ref.subresource.as_ref()).map_err(|_| Skip::Broken)?,
        head.impersonated_user
            .or(head.user)
            .map_or("null", RawValue::get),
        object.get(),
    );
    Ok((RecordApi::Admission, Some(body.into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> (Vec<Record>, Vec<Skip>) {
        let mut records = Vec::new();
        let mut skips = Vec::new();
        let mut reader: Box<dyn BufRead> = Box::new(text);
        let mut seen = AuditIds::default();
        let err = read(
            "f",
            &mut reader,
            &mut seen,
            |r| records.push(r),
            |s| skips.push(s),
        );
        assert!(err.is_none());
        (records, skips)
    }

    #[test]
    fn events_become_admission_reviews_once() {
        let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}"#;
        let event = |stage: &str| {
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"{stage}","verb":"create","user":{{"username":"u","groups":["g"]}},"objectRef":{{"resource":"pods","namespace":"ns","name":"p","apiVersion":"v1"}},"requestObject":{pod}}}"#
            )
        };
        let text = format!(
            "{}\n{}\nnot json\n{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"verb\":\"get\",\"objectRef\":{{\"resource\":\"pods\"}}}}\n",
            event("RequestReceived"),
            event("ResponseComplete")
        );
        let (records, skips) = all(text.as_bytes());
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].source, "f:1");
        let v: serde_json::Value = serde_json::from_slice(&records[0].body).unwrap();
        assert_eq!(v["request"]["kind"]["kind"], "Pod");
        assert_eq!(v["request"]["namespace"], "ns");
        assert_eq!(v["request"]["userInfo"]["username"], "u");
        assert_eq!(
            v["request"]["object"]["spec"]["containers"][0]["image"],
            "nginx"
        );
        assert_eq!(skips, [Skip::RepeatedStage, Skip::Broken, Skip::OtherVerb]);
    }

    #[test]
    fn long_lines_are_skipped_and_reading_goes_on() {
        let mut text = vec![b'x'; MAX_LINE_BYTES + 10];
        text.extend_from_slice(
            b"\n{\"apiVersion\":\"imagepolicy.k8s.io/v1alpha1\",\"kind\":\"ImageReview\"}\n",
        );
        let (records, skips) = all(&text);
        assert_eq!(skips, [Skip::TooLong]);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].source, "f:2");
        assert_eq!(records[0].api, RecordApi::Image);
    }
}

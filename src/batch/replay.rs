//! `replay`: recorded reviews judged again under a policy, and, with a
//! baseline policy, which objects change verdict between the two.
//!
//! Memory stays bounded whatever the input's size: records are judged as
//! they are read, tallies are per namespace and reason, and the objects
//! listed (changes, denials) are distinct and capped at [`MAX_LISTED`].

use std::collections::{BTreeMap, HashMap};

use crate::review::{self, Judged, Parsed};

use super::records::{AuditIds, Record, Skip};
use super::verify::Verifications;

/// Most distinct objects listed (changes, or denials without a baseline);
/// the rest are counted in [`Replay::unlisted`].
pub const MAX_LISTED: usize = 10_000;
/// Most namespaces tallied one by one; the rest are added up under `*`.
const MAX_NAMESPACES: usize = 10_000;

/// One object whose verdict is listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// `FILE:LINE` of its first review.
    pub source: String,
    /// The object as judged under `--policy`.
    pub judged: Judged,
    /// The verdict under the baseline (`None` without one).
    pub before: Option<bool>,
    /// How many reviews of this object (same kind, name, namespace, images
    /// and verdicts) were read.
    pub count: u64,
}

/// The result of a replay.
#[derive(Debug, Default)]
pub struct Replay {
    /// Reviews judged.
    pub reviews: u64,
    /// Reviews the policy allows (every image's verdict an allow).
    pub allowed: u64,
    /// Reviews the policy denies.
    pub denied: u64,
    /// Of the denied, those in audit mode (the webhook would still admit).
    pub denied_in_audit: u64,
    /// Lines not judged, by why.
    pub skipped: BTreeMap<Skip, u64>,
    /// Records that are reviews but cannot be decoded (a missing field...).
    pub malformed: u64,
    /// Denied reviews per namespace.
    pub denied_by_namespace: BTreeMap<String, u64>,
    /// Denied images per reason.
    pub denied_by_reason: BTreeMap<&'static str, u64>,
    /// With a baseline: reviews newly denied and newly allowed.
    pub newly_denied: u64,
    /// See [`Replay::newly_denied`].
    pub newly_allowed: u64,
    /// With a baseline, the objects that change verdict; without one, the
    /// denied objects. Distinct, in first-seen order.
    pub listed: Vec<Listed>,
    /// Listed objects left out past [`MAX_LISTED`].
    pub unlisted: u64,
    /// Files that ended early on a read error (a truncated gzip stream),
    /// with the error.
    pub read_errors: Vec<(String, String)>,
    index: HashMap<u64, usize>,
}

impl Replay {
    /// Lines skipped in all.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// Replays `files` (opened by [`super::records::open`]) under `policy`, and
/// `baseline` when given. `progress` is called now and then with the
/// number of reviews judged so far (for a progress line).
pub fn replay(
    files: &mut [(String, Box<dyn std::io::BufRead>)],
    policy: &mut Verifications,
    mut baseline: Option<&mut Verifications>,
    mut progress: impl FnMut(u64),
) -> Replay {
    let mut out = Replay::default();
    let mut seen = AuditIds::default();
    // Lines read, counted by both callbacks; the progress line is updated
    // when a review comes after another 16 384 lines.
    let lines = std::cell::Cell::new(0u64);
    let mut shown = 0u64;
    for (file, reader) in files.iter_mut() {
        let mut skips = [0u64; Skip::ALL.len()];
        let error = super::records::read(
            file,
            reader.as_mut(),
            &mut seen,
            |record| {
                lines.set(lines.get() + 1);
                if lines.get() - shown >= 16_384 {
                    shown = lines.get();
                    progress(out.reviews);
                }
                one(record, policy, baseline.as_deref_mut(), &mut out);
            },
            |skip| {
                lines.set(lines.get() + 1);
                skips[skip.index()] += 1;
            },
        );
        for (skip, n) in Skip::ALL.iter().zip(skips) {
            if n > 0 {
                *out.skipped.entry(*skip).or_default() += n;
            }
        }
        if let Some(e) = error {
            out.read_errors.push((file.clone(), e.to_string()));
        }
    }
    progress(out.reviews);
    out
}

/// Judges a parsed review under `v`, verifying first what its `verify`
/// rules ask for. The parse is the policy's to share: a record is parsed
/// once, however many policies judge it.
fn judge(parsed: &Parsed<'_>, v: &mut Verifications) -> Judged {
    if v.needed() {
        let pending = parsed.pending(v.snapshot(), false);
        v.verify(pending);
    }
    parsed.judged(v.snapshot(), v.checks())
}

fn one(
    record: Record,
    policy: &mut Verifications,
    baseline: Option<&mut Verifications>,
    out: &mut Replay,
) {
    let Record {
        source,
        api,
        mut body,
    } = record;
    let Ok(parsed) = review::parse(api, &mut body) else {
        out.malformed += 1;
        return;
    };
    let after = judge(&parsed, policy);
    if !after.judged {
        *out.skipped.entry(Skip::NotJudged).or_default() += 1;
        return;
    }
    out.reviews += 1;
    let denied = after.verdict_denied();
    if denied {
        out.denied += 1;
        if after.allowed {
            out.denied_in_audit += 1;
        }
        let namespaces = out.denied_by_namespace.len();
        let key = if namespaces < MAX_NAMESPACES
            || out.denied_by_namespace.contains_key(&after.namespace)
        {
            after.namespace.clone()
        } else {
            "*".to_owned()
        };
        *out.denied_by_namespace.entry(key).or_default() += 1;
        for image in after.images.iter().filter(|i| !i.allowed) {
            *out.denied_by_reason
                .entry(image.reason.as_str())
                .or_default() += 1;
        }
    } else {
        out.allowed += 1;
    }
    let before = baseline.map(|b| !judge(&parsed, b).verdict_denied());
    let listed = match before {
        Some(was_allowed) if was_allowed != denied => false,
        Some(was_allowed) => {
            if was_allowed {
                out.newly_denied += 1;
            } else {
                out.newly_allowed += 1;
            }
            true
        }
        None => denied,
    };
    if listed {
        list(source, after, before, out);
    }
}

fn list(source: String, judged: Judged, before: Option<bool>, out: &mut Replay) {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    (&judged.kind, &judged.name, &judged.namespace, before).hash(&mut h);
    for image in &judged.images {
        (&image.image, image.allowed, image.reason.as_str()).hash(&mut h);
    }
    let key = h.finish();
    if let Some(&i) = out.index.get(&key) {
        out.listed[i].count += 1;
        return;
    }
    if out.listed.len() >= MAX_LISTED {
        out.unlisted += 1;
        return;
    }
    out.index.insert(key, out.listed.len());
    out.listed.push(Listed {
        source,
        judged,
        before,
        count: 1,
    });
}

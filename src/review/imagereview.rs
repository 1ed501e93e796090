//! ImageReview `imagepolicy.k8s.io/v1alpha1`, as the apiserver's
//! ImagePolicyWebhook plugin sends it (spec/imagereview.md).
//!
//! Read: `apiVersion`, `kind`, `spec.containers[].image` (containers, then
//! init containers, or the ephemeral containers, in one list; `{}` is an
//! empty image), `spec.annotations`, `spec.namespace`. `metadata` and the
//! request's `status` are skipped.

use smallvec::SmallVec;

use crate::policy::{Context, Snapshot};

mod canonical;
mod fast;

use super::checks::Checks;
use super::error::{DecodeError, DecodeErrorKind};
use super::extract::{Image, ImageOf};
use super::object::{self, Judged};
use super::verdict::Verdicts;
use super::wire::{self, Annotations, List, Str, wire_object};
use super::{Api, Reviewed, respond};

/// The only version the plugin sends.
pub(super) const API_VERSION: &str = "imagepolicy.k8s.io/v1alpha1";
const KIND: &str = "ImageReview";

wire_object! {
    struct ImageReview<'a> {
        api_version: Str<'a> = "apiVersion",
        kind: Str<'a> = "kind",
        spec: Spec<'a> = "spec",
    }
}

wire_object! {
    struct Spec<'a> {
        containers: List<ImageOf<'a>> = "containers",
        annotations: Annotations<'a> = "annotations",
        namespace: Str<'a> = "namespace",
    }
}

/// The parts of an ImageReview a decision needs. The lists are kept
/// inline up to the sizes a pod usually has (no allocation per review).
pub(super) struct Parts<'a> {
    namespace: &'a str,
    annotations: SmallVec<[(&'a str, &'a str); 4]>,
    images: SmallVec<[ImageOf<'a>; 8]>,
}

impl<'a> Parts<'a> {
    /// What the policy reads besides the images (an ImageReview names no
    /// user).
    fn context(&self) -> Context<'_> {
        Context {
            namespace: self.namespace,
            annotations: &self.annotations,
            user: None,
        }
    }

    fn images(&self) -> impl Iterator<Item = Image<'a>> + '_ {
        self.images.iter().map(|image| Image::container(*image))
    }
}

/// Reads an ImageReview: the apiserver's exact form by its fixed pieces,
/// else any plain body in one pass, else the general way (which words
/// every error).
pub(super) fn parse(body: &mut [u8]) -> Result<Parts<'_>, DecodeError> {
    if let Some(found) = canonical::read(body).or_else(|| fast::scan(body)) {
        // ASCII, as both readings found it: valid UTF-8, so the error
        // below cannot happen.
        let text = std::str::from_utf8(body)
            .map_err(|_| DecodeError::new(DecodeErrorKind::NotJson, "request body is not UTF-8"))?;
        return Ok(found.parts(text));
    }
    parse_general(body)
}

/// See [`super::check_image_review_one_pass`]: each short reading that
/// takes `body` against the general way.
pub(super) fn check_one_pass(body: &[u8]) -> Result<(), String> {
    let readings = [
        ("the canonical reading", canonical::read(body)),
        ("the one-pass scan", fast::scan(body)),
    ];
    for (name, found) in readings {
        if let Some(found) = found {
            same_as_general(body, &found).map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(())
}

fn same_as_general(body: &[u8], found: &fast::Found) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "taken, but not UTF-8".to_owned())?;
    let short = found.parts(text);
    let mut copy = body.to_vec();
    let general = parse_general(&mut copy)
        .map_err(|e| format!("taken, but the general way refuses it: {e}"))?;
    let images = |parts: &Parts<'_>| -> Vec<(String, String)> {
        parts
            .images
            .iter()
            .map(|i| (i.image.to_owned(), i.name.to_owned()))
            .collect()
    };
    if short.namespace != general.namespace {
        return Err(format!(
            "namespace {:?} against {:?}",
            short.namespace, general.namespace
        ));
    }
    // As slices: `SmallVec` is invariant in its items' lifetime, and the
    // two bodies live apart.
    if short.annotations[..] != general.annotations[..] {
        return Err(format!(
            "annotations {:?} against {:?}",
            short.annotations, general.annotations
        ));
    }
    if images(&short) != images(&general) {
        return Err(format!(
            "images {:?} against {:?}",
            images(&short),
            images(&general)
        ));
    }
    Ok(())
}

/// Every body the general way: simd-json's tape, then serde.
fn parse_general(body: &mut [u8]) -> Result<Parts<'_>, DecodeError> {
    let mut de = wire::tape(body)?;
    let review: ImageReview<'_> = wire::decode(&mut de)?;
    match review.api_version {
        Some(Str(API_VERSION)) => {}
        Some(Str(other)) => {
            return Err(DecodeError::wrong_api_version(
                other,
                "\"imagepolicy.k8s.io/v1alpha1\"",
            ));
        }
        None => return Err(DecodeError::missing("apiVersion")),
    }
    match review.kind {
        Some(Str(KIND)) => {}
        Some(Str(other)) => return Err(DecodeError::wrong_kind(other, "\"ImageReview\"")),
        None => return Err(DecodeError::missing("kind")),
    }
    let spec = review.spec.ok_or_else(|| DecodeError::missing("spec"))?;
    Ok(Parts {
        namespace: spec.namespace.map_or("", |s| s.0),
        annotations: SmallVec::from_vec(spec.annotations.unwrap_or_default().0),
        images: SmallVec::from_vec(spec.containers.unwrap_or_default().0),
    })
}

fn verdicts<'a, 's>(
    parts: &Parts<'a>,
    snapshot: &'s Snapshot,
    checks: &Checks,
) -> Verdicts<'a, 's> {
    Verdicts::judge(snapshot, &parts.context(), parts.images(), checks)
}

pub(super) fn review(
    body: &mut [u8],
    snapshot: &Snapshot,
    checks: &Checks,
) -> Result<Reviewed, DecodeError> {
    Ok(answer(&parse(body)?, snapshot, checks))
}

/// The answer to a parsed ImageReview.
pub(super) fn answer(parts: &Parts<'_>, snapshot: &Snapshot, checks: &Checks) -> Reviewed {
    let verdicts = verdicts(parts, snapshot, checks);
    Reviewed {
        body: respond::image_review(&verdicts),
        outcome: verdicts.outcome(Api::ImageReview, parts.namespace),
    }
}

/// The images of a parsed ImageReview to verify before answering it.
pub(super) fn pending_of(parts: &Parts<'_>, snapshot: &Snapshot) -> Vec<String> {
    Verdicts::pending(snapshot, &parts.context(), parts.images(), false)
}

/// A parsed ImageReview judged image by image.
pub(super) fn judged(parts: &Parts<'_>, snapshot: &Snapshot, checks: &Checks) -> Judged {
    let verdicts = verdicts(parts, snapshot, checks);
    object::judged(KIND, "", parts.namespace, true, &verdicts)
}

/// The body the load test sends (the plugin's form, three images).
#[cfg(test)]
const LOAD_TEST_BODY: &[u8] = include_bytes!("../../loadtest/bodies/imagereview-3.json");

/// For the readings' tests: whenever a short reading takes `body`, the
/// general way accepts it and reads the same (the check the fuzz target
/// makes).
#[cfg(test)]
fn assert_readings_agree(body: &[u8]) {
    assert_eq!(
        check_one_pass(body),
        Ok(()),
        "{}",
        String::from_utf8_lossy(body)
    );
}

/// For the readings' proptests: the bytes that bend a body most often into
/// something else (JSON's punctuation, escapes, control characters, the
/// letters of `null`, `true` and `false`, a byte past ASCII).
#[cfg(test)]
const BENDING_BYTES: &[u8] = b"{}[]:,\" \\0anel\t\n\r\x01\x0b\x0c\x7f\xd0";

/// `body` bent by one byte at `at`: `byte` inserted (`how` 0), the byte
/// there removed (1) or replaced (2); past the end, `byte` appended.
#[cfg(test)]
fn bent(body: String, at: proptest::sample::Index, byte: u8, how: u8) -> Vec<u8> {
    let mut bytes = body.into_bytes();
    let i = at.index(bytes.len() + 1);
    match how {
        0 => bytes.insert(i, byte),
        1 if i < bytes.len() => {
            bytes.remove(i);
        }
        _ if i < bytes.len() => bytes[i] = byte,
        _ => bytes.push(byte),
    }
    bytes
}

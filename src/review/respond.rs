//! Response bodies: the ImageReview `status` and the AdmissionReview
//! `response`, written directly as JSON bytes.
//!
//! Audit annotation keys carry no prefix and no `/`: the apiserver prepends
//! `imagepolicywebhook.image-policy.k8s.io/` (ImageReview) or
//! `<webhook name>/` (AdmissionReview) and drops keys that are not then a
//! qualified name with exactly one `/`.

use std::cell::RefCell;
use std::fmt::Write as _;

use bytes::Bytes;

use super::json::Json;
use super::verdict::{self, Verdicts};

/// `auditAnnotations` key: the generation of the policy that decided.
pub const AUDIT_POLICY_GENERATION: &str = "policy-generation";
/// `auditAnnotations` key: images admitted by a break-glass annotation.
pub const AUDIT_BREAK_GLASS: &str = "break-glass";
/// `auditAnnotations` key: what audit mode admitted that enforce would deny.
pub const AUDIT_WOULD_DENY: &str = "audit-would-deny";
/// `auditAnnotations` key: policy warnings (forbidden tag next to a digest).
pub const AUDIT_WARNINGS: &str = "warnings";

/// Longest denial reason/message and audit annotation value, in characters.
const MAX_TEXT: usize = 8 * 1024;
/// Longest AdmissionReview warning, in characters. The API asks for 120
/// "if possible" and the apiserver cuts warnings to 256 once their total
/// passes 4096; a policy sentence naming a digest-pinned image rarely fits
/// 120, so warnings are cut at 256, which the apiserver then never cuts.
pub const MAX_WARNING_CHARS: usize = 256;
/// Most AdmissionReview warnings; one more line counts the rest. With
/// [`MAX_WARNING_CHARS`] the total stays within the apiserver's 4096.
const MAX_WARNINGS: usize = 15;

thread_local! {
    /// The last plain allowed ImageReview answer this thread wrote, by
    /// policy generation.
    static ALLOWED: RefCell<Option<(u64, Bytes)>> = const { RefCell::new(None) };
}

/// `{"apiVersion":...,"kind":"ImageReview","status":{...}}`.
///
/// An allowed review with nothing to add (no denial, warning, audit-mode
/// or break-glass note) has one answer per policy generation: the thread
/// keeps the last one it wrote and hands out a reference to it, instead of
/// writing and allocating the same bytes for every review.
pub(super) fn image_review(verdicts: &Verdicts<'_, '_>) -> Bytes {
    let plain = verdicts.allowed
        && !verdicts.has_denied()
        && !verdicts.has_would_deny()
        && !verdicts.has_break_glass()
        && !verdicts.has_warnings();
    if !plain {
        return bytes(image_review_json(verdicts));
    }
    let generation = verdicts.generation;
    ALLOWED.with(|kept| {
        let mut kept = kept.borrow_mut();
        match &*kept {
            Some((g, body)) if *g == generation => body.clone(),
            _ => {
                let body = bytes(image_review_json(verdicts));
                *kept = Some((generation, body.clone()));
                body
            }
        }
    })
}

/// A response body as `Bytes`. `Bytes` takes an exactly sized buffer as it
/// is and allocates a header for one with spare room; shrinking keeps the
/// block when the size stays in its size class, and otherwise copies the
/// (small) body once.
pub(crate) fn bytes(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}

fn image_review_json(verdicts: &Verdicts<'_, '_>) -> Vec<u8> {
    let mut json = Json::with_capacity(256);
    json.raw(
        r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","status":{"allowed":"#,
    );
    json.raw(if verdicts.allowed { "true" } else { "false" });
    if verdicts.has_denied() {
        json.raw(r#","reason":"#);
        json.text(MAX_TEXT, |out| verdicts.write_denied(out));
    }
    json.raw(",");
    audit_annotations(&mut json, verdicts);
    json.raw("}}");
    json.finish()
}

/// `{"apiVersion":<asked>,"kind":"AdmissionReview","response":{...}}`.
pub(super) fn admission_review(
    api_version: &str,
    uid: &str,
    verdicts: &Verdicts<'_, '_>,
) -> Vec<u8> {
    let mut json = Json::with_capacity(256 + uid.len());
    json.raw(r#"{"apiVersion":"#);
    json.string(api_version);
    json.raw(r#","kind":"AdmissionReview","response":{"uid":"#);
    json.string(uid);
    json.raw(r#","allowed":"#);
    json.raw(if verdicts.allowed { "true" } else { "false" });
    if verdicts.has_denied() {
        json.raw(r#","status":{"status":"Failure","code":403,"reason":"Forbidden","message":"#);
        json.text(MAX_TEXT, |out| verdicts.write_denied(out));
        json.raw("}");
    }
    if verdicts.has_would_deny() || verdicts.has_warnings() {
        json.raw(r#","warnings":["#);
        let mut written = 0usize;
        let mut more = 0usize;
        for (image, decision) in verdicts.warning_lines() {
            if written == MAX_WARNINGS {
                more += 1;
                continue;
            }
            if written > 0 {
                json.raw(",");
            }
            json.text(MAX_WARNING_CHARS, |out| {
                verdict::explain(out, image, &decision)
            });
            written += 1;
        }
        if more > 0 {
            json.raw(",");
            json.text(MAX_WARNING_CHARS, |out| {
                write!(out, "and {more} more warnings")
            });
        }
        json.raw("]");
    }
    json.raw(",");
    audit_annotations(&mut json, verdicts);
    json.raw("}}");
    json.finish()
}

fn audit_annotations(json: &mut Json, verdicts: &Verdicts<'_, '_>) {
    json.raw(r#""auditAnnotations":{"#);
    json.string(AUDIT_POLICY_GENERATION);
    json.raw(":\"");
    json.number(verdicts.generation);
    json.raw("\"");
    if verdicts.has_break_glass() {
        json.raw(",");
        json.string(AUDIT_BREAK_GLASS);
        json.raw(":");
        json.text(MAX_TEXT, |out| verdicts.write_break_glass(out));
    }
    if verdicts.has_would_deny() {
        json.raw(",");
        json.string(AUDIT_WOULD_DENY);
        json.raw(":");
        json.text(MAX_TEXT, |out| verdicts.write_would_deny(out));
    }
    if verdicts.has_warnings() {
        json.raw(",");
        json.string(AUDIT_WARNINGS);
        json.raw(":");
        json.text(MAX_TEXT, |out| verdicts.write_warnings(out));
    }
    json.raw("}");
}

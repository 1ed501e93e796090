//! The wire side of a review: ImageReview and AdmissionReview bodies in,
//! response bodies out.
//!
//! decode → apply → encode, in one allocation-light pass: the body is parsed
//! in place by simd-json into narrow borrowed views (image strings,
//! namespace, annotations, uid...), each image is judged by a
//! [`Scope`](crate::policy::Scope) of the given [`Snapshot`], and the answer
//! is written straight to bytes. Owned strings are made only for denied
//! images (the deny log).
//!
//! This module decides nothing itself: a body that is a review always gets
//! a verdict from the policy (bad images included, which the policy
//! denies); a body that is not one gets a [`DecodeError`].

mod admission;
mod checks;
mod error;
mod extract;
mod imagereview;
mod json;
mod mutate;
mod object;
mod respond;
mod verdict;
mod wire;

#[cfg(test)]
mod tests;

pub use checks::{Check, Checks};
pub use error::{DecodeError, DecodeErrorKind};
pub use extract::Field;
pub use mutate::Mutated;
pub use object::{Judged, JudgedImage, ObjectContext, ParsedObject};
pub(crate) use respond::bytes as body_bytes;
pub use respond::{
    AUDIT_BREAK_GLASS, AUDIT_POLICY_GENERATION, AUDIT_WARNINGS, AUDIT_WOULD_DENY, MAX_WARNING_CHARS,
};
pub use wire::MAX_DEPTH;

use bytes::Bytes;

use crate::policy::{Mode, Reason, Snapshot};

/// Decides an ImageReview (`imagepolicy.k8s.io/v1alpha1`) body.
///
/// `body` is parsed in place (its bytes are rewritten). A body that is not
/// an ImageReview is a [`DecodeError`]; any review, however bad its images,
/// gets an answer. Images that a `verify` rule applies to are judged
/// `verification_unavailable` here: when the policy has `verify` rules, use
/// [`parse`] and its [`Parsed::pending`] and [`Parsed::answer`] (one parse),
/// as [`crate::decide::Engine::decide`] does.
pub fn image_review(body: &mut [u8], snapshot: &Snapshot) -> Result<Reviewed, DecodeError> {
    imagereview::review(body, snapshot, &Checks::new())
}

/// Decides an AdmissionReview (`admission.k8s.io/v1` or `v1beta1`) body,
/// answering in the version asked.
///
/// `DELETE` and `CONNECT`, subresources other than a Pod's
/// `ephemeralcontainers`, and kinds without pod templates are allowed
/// without looking. `body` is parsed in place.
pub fn admission_review(body: &mut [u8], snapshot: &Snapshot) -> Result<Reviewed, DecodeError> {
    admission::review(body, snapshot, &Checks::new())
}

/// A review body parsed once, in place, into borrowed views: what must be
/// verified before it is answered, then its answer, with no second parse
/// (the server holds it across the verification's await).
pub struct Parsed<'a>(ParsedKind<'a>);

#[allow(
    clippy::large_enum_variant,
    reason = "one per review, in the verification path's future, which is boxed already"
)]
enum ParsedKind<'a> {
    Image(imagereview::Parts<'a>),
    Admission(admission::Parts<'a>),
}

impl std::fmt::Debug for Parsed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            ParsedKind::Image(_) => "Parsed(ImageReview)",
            ParsedKind::Admission(_) => "Parsed(AdmissionReview)",
        })
    }
}

/// For the `imagereview` fuzz target: when a short reading of ImageReview
/// bodies (the apiserver's exact form, or the one-pass scan of plain
/// bodies) takes `body`, whether the general reading (simd-json and serde)
/// accepts it and reads the same namespace, annotations and images. `Err`
/// names the reading and the difference; a body the short readings leave
/// alone is `Ok`.
#[doc(hidden)]
pub fn check_image_review_one_pass(body: &[u8]) -> Result<(), String> {
    imagereview::check_one_pass(body)
}

/// Parses a review body of protocol `api` (see [`Parsed`]).
pub fn parse(api: Api, body: &mut [u8]) -> Result<Parsed<'_>, DecodeError> {
    Ok(Parsed(match api {
        Api::ImageReview => ParsedKind::Image(imagereview::parse(body)?),
        Api::AdmissionReview => ParsedKind::Admission(admission::parse(body)?),
    }))
}

impl Parsed<'_> {
    /// The distinct images to verify at their registries before answering:
    /// those the policy allows and a `verify` rule applies to. With `pin`
    /// (for `/mutate` under `mutate.pinDigests`, AdmissionReviews only)
    /// every other allowed image given by tag too, to have its digest
    /// resolved.
    pub fn pending(&self, snapshot: &Snapshot, pin: bool) -> Vec<String> {
        match &self.0 {
            ParsedKind::Image(parts) => imagereview::pending_of(parts, snapshot),
            ParsedKind::Admission(parts) => admission::pending_of(parts, snapshot, pin),
        }
    }

    /// The answer, with the verification results of the pending images.
    pub fn answer(&self, snapshot: &Snapshot, checks: &Checks) -> Reviewed {
        match &self.0 {
            ParsedKind::Image(parts) => imagereview::answer(parts, snapshot, checks),
            ParsedKind::Admission(parts) => admission::answer(parts, snapshot, checks),
        }
    }

    /// The answer image by image (for replaying recorded reviews).
    pub fn judged(&self, snapshot: &Snapshot, checks: &Checks) -> Judged {
        match &self.0 {
            ParsedKind::Image(parts) => imagereview::judged(parts, snapshot, checks),
            ParsedKind::Admission(parts) => admission::judged(parts, snapshot, checks),
        }
    }

    /// The mutating answer (`POST /mutate`); `None` for an ImageReview.
    pub fn mutate(&self, snapshot: &Snapshot, checks: &Checks) -> Option<Mutated> {
        match &self.0 {
            ParsedKind::Image(_) => None,
            ParsedKind::Admission(parts) => Some(mutate::answer(parts, snapshot, checks)),
        }
    }
}

/// Parses a bare Kubernetes object (a manifest document, an audit event's
/// `requestObject`) once, in place, with the extraction `/validate` uses
/// for `request.object`: its pod-bearing kind is read from its own
/// `apiVersion` and `kind` (other kinds are judged `judged: false`), its
/// namespace from `metadata.namespace`, else the context's. A body without
/// `apiVersion` or `kind` is a [`DecodeError`]. The result says which
/// images to verify ([`ParsedObject::pending`]) and then judges
/// ([`ParsedObject::judged`]).
pub fn parse_object(body: &mut [u8]) -> Result<ParsedObject<'_>, DecodeError> {
    object::parse_object(body)
}

/// [`parse_object`] and [`ParsedObject::judged`] at once, for an object
/// whose images need no verification first.
pub fn object(
    body: &mut [u8],
    snapshot: &Snapshot,
    ctx: &ObjectContext<'_>,
    checks: &Checks,
) -> Result<Judged, DecodeError> {
    Ok(parse_object(body)?.judged(snapshot, ctx, checks))
}

/// A decided review: the response body and a summary for logs and metrics.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The JSON response body (`Content-Type: application/json`).
    pub body: Bytes,
    /// What was decided.
    pub outcome: Summary,
}

/// The summary of a decided review, with bounded-set fields for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Which protocol the review came in.
    pub api: Api,
    /// Whether the review was allowed (always true in audit mode).
    pub allowed: bool,
    /// The mode in force for the review's namespace.
    pub mode: Mode,
    /// One verdict reason per image, in image order (a deny reason even in
    /// audit mode).
    pub reasons: Vec<Reason>,
    /// The namespace of the pods ("" when unknown).
    pub namespace: String,
    /// Every image whose verdict is a deny, with its reason, for the deny
    /// log: empty when every verdict allows. In audit mode these are the
    /// images that would have been denied (`allowed` is still true).
    /// Images longer than 1024 bytes (never a valid reference) are cut and
    /// end in `…`.
    pub denied: Vec<(String, Reason)>,
    /// Every image admitted although its verdict was a deny, by the
    /// break-glass annotation or by `verification.onError: allow`, for the
    /// audit log (empty almost always).
    pub admitted: Vec<Admitted>,
    /// The requesting user (AdmissionReview `request.userInfo.username`),
    /// set when `admitted` is not empty; "" otherwise or when unknown.
    pub user: String,
}

/// An image admitted despite a deny verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The image (cut like [`Summary::denied`]'s), with its image volume's
    /// name when it came from one.
    pub image: String,
    /// The deny reason that was set aside.
    pub reason: Reason,
    /// What admitted it.
    pub by: AdmittedBy,
}

/// What admitted an image that the policy denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmittedBy {
    /// The break-glass annotation.
    BreakGlass,
    /// `verification.onError: allow` (the registry could not answer).
    OnErrorAllow,
}

impl AdmittedBy {
    /// `break-glass` or `onError-allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmittedBy::BreakGlass => "break-glass",
            AdmittedBy::OnErrorAllow => "onError-allow",
        }
    }
}

/// Which review protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// ImageReview `imagepolicy.k8s.io/v1alpha1` (`POST /imagepolicy`).
    ImageReview,
    /// AdmissionReview `admission.k8s.io/v1`/`v1beta1` (`POST /validate`).
    AdmissionReview,
}

impl Api {
    /// The label value: `imagereview` or `admissionreview`.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::ImageReview => "imagereview",
            Api::AdmissionReview => "admissionreview",
        }
    }
}

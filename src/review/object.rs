//! A bare Kubernetes object (a manifest document, an audit event's
//! `requestObject`), read with the same extraction as an AdmissionReview's
//! `request.object`, and the image-by-image account of any judged review
//! that the CLI prints.
//!
//! The object's kind comes from its own `apiVersion` and `kind`: one walk
//! over the tape reads those and `metadata.name`, a second walk decodes the
//! pod spec with the kind's [`Shape`], exactly as `/validate` does.

use crate::policy::{Context, Mode, Reason, Snapshot, User};

use super::checks::Checks;
use super::error::DecodeError;
use super::extract::{Extracted, Field, Shape, ShapeSeed};
use super::verdict::{Verdicts, explain};
use super::wire::{self, Str, wire_object};

wire_object! {
    struct Head<'a> {
        api_version: Str<'a> = "apiVersion",
        kind: Str<'a> = "kind",
        metadata: Names<'a> = "metadata",
    }
}

wire_object! {
    struct Names<'a> {
        name: Str<'a> = "name",
        generate_name: Str<'a> = "generateName",
    }
}

/// What the caller knows that the object may not say.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObjectContext<'a> {
    /// The namespace when the object has none (`metadata.namespace` wins).
    pub namespace: &'a str,
    /// The requesting user, when known (audit events, AdmissionReviews).
    pub user: Option<User<'a>>,
}

/// One object or review judged image by image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The object's kind (`ImageReview` for an ImageReview).
    pub kind: String,
    /// `metadata.name`, else `metadata.generateName` (`""` when both are
    /// absent or unknown).
    pub name: String,
    /// The namespace the pods would run in.
    pub namespace: String,
    /// Whether it holds pods to judge; `false` for other kinds, `DELETE`s
    /// and subresources (then `images` is empty and it is allowed).
    pub judged: bool,
    /// What the webhook would answer (audit mode admits).
    pub allowed: bool,
    /// The mode in force for the namespace.
    pub mode: Mode,
    /// Every image, in extraction order.
    pub images: Vec<JudgedImage>,
}

impl Judged {
    /// Whether the policy's verdict is a deny for some image, whatever the
    /// mode (what enforcing the same policy would refuse).
    pub fn verdict_denied(&self) -> bool {
        self.images.iter().any(|i| !i.allowed)
    }
}

/// One image of a [`Judged`] object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedImage {
    /// The list it came from.
    pub field: Field,
    /// The container's or image volume's name (`""` when absent).
    pub name: String,
    /// The image string as written.
    pub image: String,
    /// The policy's verdict for the image (audit mode does not change it).
    pub allowed: bool,
    /// Why.
    pub reason: Reason,
    /// The sentence a denial carries (also written for allowed images).
    pub message: String,
    /// A warning for an allowed image, if any.
    pub warning: Option<String>,
}

/// The parts of a bare object a decision needs.
struct Parts<'a> {
    kind: &'a str,
    name: &'a str,
    object: Option<Extracted<'a>>,
}

fn parse(body: &mut [u8]) -> Result<Parts<'_>, DecodeError> {
    let mut de = wire::tape(body)?;
    let head: Head<'_> = wire::decode(&mut de)?;
    let api_version = head
        .api_version
        .ok_or_else(|| DecodeError::missing("apiVersion"))?
        .0;
    let kind = head.kind.ok_or_else(|| DecodeError::missing("kind"))?.0;
    let name = head
        .metadata
        .and_then(|m| m.name.or(m.generate_name))
        .map_or("", |s| s.0);
    let group = api_version.split_once('/').map_or("", |(group, _)| group);
    let object = match Shape::of(group, kind) {
        None => None,
        Some(shape) => {
            de.restart();
            Some(wire::decode_seed(&mut de, ShapeSeed(shape))?.unwrap_or_default())
        }
    };
    Ok(Parts { kind, name, object })
}

/// A bare object parsed once, in place: its kind, its name and, for a
/// pod-bearing kind, the views of its pod spec. What it needs verified and
/// its verdict are both read from these views, so an object whose images
/// are verified first is still parsed once.
pub struct ParsedObject<'a>(Parts<'a>);

impl ParsedObject<'_> {
    /// The images to verify before [`ParsedObject::judged`] (as
    /// [`super::Parsed::pending`]); none for a kind without pods.
    pub fn pending(&self, snapshot: &Snapshot, ctx: &ObjectContext<'_>) -> Vec<String> {
        match &self.0.object {
            None => Vec::new(),
            Some(object) => {
                Verdicts::pending(snapshot, &context(object, ctx), object.spec.images(), false)
            }
        }
    }

    /// The object judged image by image, with the verification results in
    /// `checks`.
    pub fn judged(&self, snapshot: &Snapshot, ctx: &ObjectContext<'_>, checks: &Checks) -> Judged {
        let parts = &self.0;
        let Some(object) = &parts.object else {
            let nothing = Verdicts::nothing(snapshot, ctx.namespace);
            return judged(parts.kind, parts.name, ctx.namespace, false, &nothing);
        };
        let context = context(object, ctx);
        let verdicts = Verdicts::judge(snapshot, &context, object.spec.images(), checks);
        judged(parts.kind, parts.name, context.namespace, true, &verdicts)
    }
}

/// See [`super::parse_object`].
pub(super) fn parse_object(body: &mut [u8]) -> Result<ParsedObject<'_>, DecodeError> {
    parse(body).map(ParsedObject)
}

/// What the policy reads besides the images: the object's namespace (else
/// the caller's), its pods' annotations, the caller's user.
fn context<'c>(object: &'c Extracted<'c>, ctx: &ObjectContext<'c>) -> Context<'c> {
    Context {
        namespace: if object.namespace.is_empty() {
            ctx.namespace
        } else {
            object.namespace
        },
        annotations: &object.annotations,
        user: ctx.user,
    }
}

/// The image-by-image account of `verdicts`.
pub(super) fn judged(
    kind: &str,
    name: &str,
    namespace: &str,
    judged: bool,
    verdicts: &Verdicts<'_, '_>,
) -> Judged {
    Judged {
        kind: kind.to_owned(),
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        judged,
        allowed: verdicts.allowed,
        mode: verdicts.mode,
        images: verdicts
            .items
            .iter()
            .map(|(item, d)| {
                let mut message = String::new();
                // Writing to a String cannot fail.
                let _ = explain(&mut message, *item, d);
                JudgedImage {
                    field: item.field,
                    name: item.name.to_owned(),
                    image: item.image.to_owned(),
                    allowed: d.verdict_allowed(),
                    reason: d.reason(),
                    message,
                    warning: d.warning().map(|w| w.to_string()),
                }
            })
            .collect(),
    }
}

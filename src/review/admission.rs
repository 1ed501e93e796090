//! AdmissionReview `admission.k8s.io/v1` and `v1beta1`, as the apiserver's
//! validating webhook dispatcher sends it (spec/admissionreview.md).
//!
//! Read: `apiVersion`, `kind`, and from `request`: `uid`, `kind`,
//! `subResource`, `namespace`, `operation` and the images of `object`
//! (shape chosen by `request.kind`). `oldObject`, `userInfo`, `options` and
//! the rest are skipped. The apiserver writes `request.kind` before
//! `object`, so the object is decoded in the same pass; should a body list
//! them the other way round, the object is skipped and read in a second
//! walk over the already-parsed tape.

use crate::policy::{Context, Snapshot};

mod request;

use request::{Deferred, Object, Request, UserInfo, shape, skips_object};

use super::checks::Checks;
use super::error::DecodeError;
use super::extract::{Extracted, Shape};
use super::object::{self, Judged};
use super::verdict::Verdicts;
use super::wire::{self, Str, wire_object};
use super::{Api, Reviewed, respond};

const V1: &str = "admission.k8s.io/v1";
const V1BETA1: &str = "admission.k8s.io/v1beta1";
const KIND: &str = "AdmissionReview";

wire_object! {
    struct Envelope<'a> {
        api_version: Str<'a> = "apiVersion",
        kind: Str<'a> = "kind",
        request: Request<'a> = "request",
    }
}

/// What a decision needs from an AdmissionReview.
pub(super) struct Parts<'a> {
    pub(super) api_version: &'a str,
    pub(super) uid: &'a str,
    /// `request.kind.kind` (`""` when absent).
    pub(super) kind: &'a str,
    /// `request.name` (`""` when absent).
    pub(super) name: &'a str,
    /// `request.namespace`, or the object's when the request has none.
    pub(super) namespace: &'a str,
    /// The object with pods to judge; `None` when there is nothing to
    /// judge (DELETE, CONNECT, a kind without pods, another subresource).
    pub(super) object: Option<(Shape, Extracted<'a>)>,
    /// `request.userInfo`, when given.
    pub(super) user: Option<UserInfo<'a>>,
}

impl Parts<'_> {
    /// What the policy reads besides the images of `object` (this
    /// request's object): the namespace, the pods' annotations, the user.
    fn context<'p>(&'p self, object: &'p Extracted<'_>) -> Context<'p> {
        Context {
            namespace: self.namespace,
            annotations: &object.annotations,
            user: self.user.as_ref().map(UserInfo::view),
        }
    }
}

pub(super) fn parse(body: &mut [u8]) -> Result<Parts<'_>, DecodeError> {
    let mut de = wire::tape(body)?;
    let envelope: Envelope<'_> = wire::decode(&mut de)?;
    let api_version = match envelope.api_version {
        Some(Str(v @ (V1 | V1BETA1))) => v,
        Some(Str(other)) => {
            return Err(DecodeError::wrong_api_version(
                other,
                "\"admission.k8s.io/v1\" or \"admission.k8s.io/v1beta1\"",
            ));
        }
        None => return Err(DecodeError::missing("apiVersion")),
    };
    match envelope.kind {
        Some(Str(KIND)) => {}
        Some(Str(other)) => return Err(DecodeError::wrong_kind(other, "\"AdmissionReview\"")),
        None => return Err(DecodeError::missing("kind")),
    }
    let request = envelope
        .request
        .ok_or_else(|| DecodeError::missing("request"))?;
    let uid = request
        .uid
        .ok_or_else(|| DecodeError::missing("request.uid"))?;
    let namespace = request.namespace.unwrap_or("");
    let kind_name = request
        .kind
        .as_ref()
        .and_then(|k| k.kind)
        .map_or("", |s| s.0);
    let name = request.name.unwrap_or("");
    let nothing = |user| Parts {
        api_version,
        uid,
        kind: kind_name,
        name,
        namespace,
        object: None,
        user,
    };
    if request.operation.is_some_and(skips_object) {
        return Ok(nothing(request.user));
    }
    let kind = request
        .kind
        .as_ref()
        .ok_or_else(|| DecodeError::missing("request.kind"))?;
    let Some(shape) = shape(kind, request.sub_resource) else {
        return Ok(nothing(request.user));
    };
    let object = match request.object {
        Object::Decoded(object) => object,
        Object::Absent => return Err(DecodeError::missing("request.object")),
        Object::Skipped => {
            de.restart();
            wire::decode_seed(&mut de, Deferred(shape))?
                .ok_or_else(|| DecodeError::missing("request.object"))?
        }
    };
    let namespace = if namespace.is_empty() {
        object.namespace
    } else {
        namespace
    };
    Ok(Parts {
        api_version,
        uid,
        kind: kind_name,
        name,
        namespace,
        object: Some((shape, object)),
        user: request.user,
    })
}

fn verdicts<'a, 's>(
    parts: &'a Parts<'a>,
    snapshot: &'s Snapshot,
    checks: &Checks,
) -> Verdicts<'a, 's> {
    match &parts.object {
        None => Verdicts::nothing(snapshot, parts.namespace),
        Some((_, object)) => Verdicts::judge(
            snapshot,
            &parts.context(object),
            object.spec.images(),
            checks,
        ),
    }
}

pub(super) fn review(
    body: &mut [u8],
    snapshot: &Snapshot,
    checks: &Checks,
) -> Result<Reviewed, DecodeError> {
    Ok(answer(&parse(body)?, snapshot, checks))
}

/// The answer to a parsed AdmissionReview.
pub(super) fn answer(parts: &Parts<'_>, snapshot: &Snapshot, checks: &Checks) -> Reviewed {
    let verdicts = verdicts(parts, snapshot, checks);
    Reviewed {
        body: respond::bytes(respond::admission_review(
            parts.api_version,
            parts.uid,
            &verdicts,
        )),
        outcome: {
            let mut outcome = verdicts.outcome(Api::AdmissionReview, parts.namespace);
            // Who asked, for the audit log of what was admitted anyway.
            if !outcome.admitted.is_empty()
                && let Some(user) = &parts.user
            {
                user.name.clone_into(&mut outcome.user);
            }
            outcome
        },
    }
}

/// The images of a parsed AdmissionReview to verify (or, with `pin`, to
/// resolve) before answering it.
pub(super) fn pending_of(parts: &Parts<'_>, snapshot: &Snapshot, pin: bool) -> Vec<String> {
    match &parts.object {
        None => Vec::new(),
        Some((_, object)) => {
            Verdicts::pending(snapshot, &parts.context(object), object.spec.images(), pin)
        }
    }
}

/// A parsed AdmissionReview judged image by image.
pub(super) fn judged(parts: &Parts<'_>, snapshot: &Snapshot, checks: &Checks) -> Judged {
    let verdicts = verdicts(parts, snapshot, checks);
    let name = match (&parts.object, parts.name) {
        (Some((_, object)), "") => object.name,
        _ => parts.name,
    };
    object::judged(
        parts.kind,
        name,
        parts.namespace,
        parts.object.is_some(),
        &verdicts,
    )
}

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

use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::policy::{Context, Snapshot, User};

use super::checks::Checks;
use super::error::DecodeError;
use super::extract::{Extracted, Shape, ShapeSeed};
use super::object::{self, Judged};
use super::verdict::Verdicts;
use super::wire::{self, List, Str, at_key, first, skip, wire_object};
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

wire_object! {
    /// `request.userInfo`: who asked (for break-glass restricted to users
    /// or groups, and the audit log).
    struct UserWire<'a> {
        username: Str<'a> = "username",
        groups: List<Str<'a>> = "groups",
    }
}

/// `request.userInfo`, as the policy reads it.
#[derive(Debug)]
pub(super) struct UserInfo<'a> {
    pub(super) name: &'a str,
    pub(super) groups: Vec<&'a str>,
}

impl<'a> UserInfo<'a> {
    fn view(&self) -> User<'_> {
        User {
            name: self.name,
            groups: &self.groups,
        }
    }
}

wire_object! {
    struct GroupVersionKind<'a> {
        group: Str<'a> = "group",
        kind: Str<'a> = "kind",
    }
}

/// The fields of `request` a decision needs.
#[derive(Debug, Default)]
pub(super) struct Request<'a> {
    uid: Option<&'a str>,
    kind: Option<GroupVersionKind<'a>>,
    name: Option<&'a str>,
    sub_resource: Option<&'a str>,
    namespace: Option<&'a str>,
    operation: Option<&'a str>,
    user: Option<UserInfo<'a>>,
    object: Object<'a>,
}

#[derive(Debug, Default)]
enum Object<'a> {
    /// Absent or `null`.
    #[default]
    Absent,
    /// Present but not decoded (not needed, or its kind was not known yet).
    Skipped,
    Decoded(Extracted<'a>),
}

/// Operations whose object is never judged.
fn skips_object(operation: &str) -> bool {
    matches!(operation, "DELETE" | "CONNECT")
}

/// The shape to read for this request, or `None` when it has no pods to
/// judge: a kind without pods, or a subresource other than a Pod's
/// `ephemeralcontainers` (`status` updates must never be refused for images).
fn shape(kind: &GroupVersionKind<'_>, sub_resource: Option<&str>) -> Option<Shape> {
    let shape = Shape::of(
        kind.group.map_or("", |s| s.0),
        kind.kind.map_or("", |s| s.0),
    )?;
    match sub_resource.unwrap_or("") {
        "" => Some(shape),
        "ephemeralcontainers" if shape == Shape::Pod => Some(shape),
        _ => None,
    }
}

impl<'de> Deserialize<'de> for Request<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Request<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request<'de>, A::Error> {
                let mut out = Request::default();
                let mut seen = [false; 8];
                let text = |map: &mut A, key: &'static str| -> Result<Option<&'de str>, A::Error> {
                    let value = map.next_value::<Option<Str<'de>>>().map_err(at_key(key))?;
                    Ok(value.map(|s| s.0))
                };
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    match key {
                        "uid" => {
                            first::<A::Error>(&mut seen[0], "uid")?;
                            out.uid = text(&mut map, "uid")?;
                        }
                        "kind" => {
                            first::<A::Error>(&mut seen[1], "kind")?;
                            out.kind = map.next_value().map_err(at_key("kind"))?;
                        }
                        "name" => {
                            first::<A::Error>(&mut seen[7], "name")?;
                            out.name = text(&mut map, "name")?;
                        }
                        "subResource" => {
                            first::<A::Error>(&mut seen[2], "subResource")?;
                            out.sub_resource = text(&mut map, "subResource")?;
                        }
                        "namespace" => {
                            first::<A::Error>(&mut seen[3], "namespace")?;
                            out.namespace = text(&mut map, "namespace")?;
                        }
                        "operation" => {
                            first::<A::Error>(&mut seen[4], "operation")?;
                            out.operation = text(&mut map, "operation")?;
                        }
                        "userInfo" => {
                            first::<A::Error>(&mut seen[6], "userInfo")?;
                            let user: Option<UserWire<'de>> =
                                map.next_value().map_err(at_key("userInfo"))?;
                            out.user = user.map(|u| UserInfo {
                                name: u.username.map_or("", |s| s.0),
                                groups: u
                                    .groups
                                    .map(|g| g.0.into_iter().map(|s| s.0).collect())
                                    .unwrap_or_default(),
                            });
                        }
                        "object" => {
                            first::<A::Error>(&mut seen[5], "object")?;
                            out.object = object(&mut map, &out)?;
                        }
                        _ => skip(&mut map)?,
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads `request.object` when what came before says how.
fn object<'de, A: MapAccess<'de>>(
    map: &mut A,
    so_far: &Request<'de>,
) -> Result<Object<'de>, A::Error> {
    let wanted = match (so_far.operation, &so_far.kind) {
        (Some(op), _) if skips_object(op) => None,
        (_, Some(kind)) => shape(kind, so_far.sub_resource),
        // Kind not seen yet: skip now, read later if needed.
        (_, None) => {
            let present = map.next_value::<Option<IgnoredAny>>()?.is_some();
            return Ok(if present {
                Object::Skipped
            } else {
                Object::Absent
            });
        }
    };
    match wanted {
        Some(shape) => {
            let object = map
                .next_value_seed(ShapeSeed(shape))
                .map_err(at_key("object"))?;
            Ok(object.map_or(Object::Absent, Object::Decoded))
        }
        None => {
            skip(map)?;
            Ok(Object::Skipped)
        }
    }
}

/// The second walk: `request.object` only, with a known shape.
struct Deferred(Shape);

impl<'de> DeserializeSeed<'de> for Deferred {
    type Value = Option<Extracted<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        /// Finds `key` in an object and reads it with `seed`; skips the rest.
        struct Find<S>(&'static str, S);
        impl<'de, S: DeserializeSeed<'de, Value = Option<Extracted<'de>>> + Copy> Visitor<'de> for Find<S> {
            type Value = Option<Extracted<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut found = None;
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    if key == self.0 {
                        found = map.next_value_seed(self.1).map_err(at_key(self.0))?;
                    } else {
                        skip(&mut map)?;
                    }
                }
                Ok(found)
            }
        }
        impl<'de, S: DeserializeSeed<'de, Value = Option<Extracted<'de>>> + Copy>
            DeserializeSeed<'de> for Find<S>
        {
            type Value = Option<Extracted<'de>>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<S: Copy> Clone for Find<S> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<S: Copy> Copy for Find<S> {}

        d.deserialize_any(Find("request", Find("object", ShapeSeed(self.0))))
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
        body: respond::admission_review(parts.api_version, parts.uid, &verdicts),
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

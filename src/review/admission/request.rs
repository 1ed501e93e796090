//! `request` of an AdmissionReview, decoded in one pass: `uid`, `kind`,
//! `name`, `subResource`, `namespace`, `operation`, `userInfo`, and the
//! images of `object` when `kind` came first (otherwise [`Deferred`] reads
//! the object in a second walk over the tape).

use std::fmt;

use serde::de::{Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::policy::User;

use super::super::extract::{Extracted, Shape, ShapeSeed};
use super::super::wire::{List, Str, at_key, first, skip, wire_object};

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
pub(in crate::review) struct UserInfo<'a> {
    pub(super) name: &'a str,
    pub(super) groups: Vec<&'a str>,
}

impl<'a> UserInfo<'a> {
    pub(super) fn view(&self) -> User<'_> {
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
pub(in crate::review) struct Request<'a> {
    pub(super) uid: Option<&'a str>,
    pub(super) kind: Option<GroupVersionKind<'a>>,
    pub(super) name: Option<&'a str>,
    pub(super) sub_resource: Option<&'a str>,
    pub(super) namespace: Option<&'a str>,
    pub(super) operation: Option<&'a str>,
    pub(super) user: Option<UserInfo<'a>>,
    pub(super) object: Object<'a>,
}

#[derive(Debug, Default)]
pub(super) enum Object<'a> {
    /// Absent or `null`.
    #[default]
    Absent,
    /// Present but not decoded (not needed, or its kind was not known yet).
    Skipped,
    Decoded(Extracted<'a>),
}

/// Operations whose object is never judged.
pub(super) fn skips_object(operation: &str) -> bool {
    matches!(operation, "DELETE" | "CONNECT")
}

/// The shape to read for this request, or `None` when it has no pods to
/// judge: a kind without pods, or a subresource other than a Pod's
/// `ephemeralcontainers` (`status` updates must never be refused for images).
pub(super) fn shape(kind: &GroupVersionKind<'_>, sub_resource: Option<&str>) -> Option<Shape> {
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
pub(super) struct Deferred(pub(super) Shape);

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

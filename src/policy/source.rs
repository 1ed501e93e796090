//! The policy file as written: serde types of the `ImagePolicy` YAML.
//!
//! Every struct denies unknown fields, so a typo is an error with its line
//! and column rather than a silently weaker policy. Values that need
//! checking keep their location (`Spanned`) for the compiler's messages.
//! Contract fields that a later version implements (`verify`,
//! `verification`, `mutate`, `registries.insecure`, `registries.auth`) are
//! read only to be rejected with their location.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

/// A string with its location.
pub(crate) type Text = Spanned<String>;

/// A field that is recognized but not supported by this version.
pub(crate) type Unsupported = Option<Spanned<IgnoredAny>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PolicyFile {
    pub(crate) api_version: Text,
    pub(crate) kind: Text,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) spec: Option<Spec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metadata {
    pub(crate) name: Option<String>,
    #[allow(dead_code, reason = "accepted for Kubernetes-style tooling; not used")]
    pub(crate) labels: Option<BTreeMap<String, String>>,
    #[allow(dead_code, reason = "accepted for Kubernetes-style tooling; not used")]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Spec {
    pub(crate) mode: Option<Text>,
    pub(crate) registries: Option<Registries>,
    pub(crate) tags: Option<Tags>,
    pub(crate) exemptions: Option<Exemptions>,
    pub(crate) overrides: Option<Vec<Override>>,
    pub(crate) break_glass: Option<BreakGlass>,
    pub(crate) verify: Unsupported,
    pub(crate) verification: Unsupported,
    pub(crate) mutate: Unsupported,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Registries {
    pub(crate) allow: Option<Vec<Text>>,
    pub(crate) deny: Option<Vec<Text>>,
    pub(crate) insecure: Unsupported,
    pub(crate) auth: Unsupported,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Tags {
    pub(crate) require_tag_or_digest: Option<bool>,
    pub(crate) forbid: Option<Vec<Text>>,
    pub(crate) require_digest: Option<bool>,
    pub(crate) semver: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Exemptions {
    pub(crate) namespaces: Option<Vec<Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Override {
    pub(crate) namespaces: Spanned<Vec<Text>>,
    pub(crate) mode: Option<Text>,
    pub(crate) registries: Option<Registries>,
    pub(crate) tags: Option<Tags>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BreakGlass {
    pub(crate) enabled: Option<bool>,
    pub(crate) annotation: Option<Text>,
    pub(crate) namespaces: Option<Spanned<Vec<Text>>>,
}

//! The policy file as written: serde types of the `ImagePolicy` YAML.
//!
//! Every struct denies unknown fields, so a typo is an error with its line
//! and column rather than a silently weaker policy. Values that need
//! checking keep their location (`Spanned`) for the compiler's messages.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A string with its location.
pub(crate) type Text = Spanned<String>;

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
    pub(crate) verify: Option<Vec<VerifyRule>>,
    pub(crate) verification: Option<Verification>,
    pub(crate) mutate: Option<Mutate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Registries {
    pub(crate) allow: Option<Vec<Text>>,
    pub(crate) deny: Option<Vec<Text>>,
    pub(crate) insecure: Option<Vec<Text>>,
    pub(crate) auth: Option<Text>,
    pub(crate) ca: Option<Text>,
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
    /// Only these users (AdmissionReview `request.userInfo.username`) may
    /// break the glass.
    pub(crate) users: Option<Spanned<Vec<Text>>>,
    /// Only members of these groups (`request.userInfo.groups`) may.
    pub(crate) groups: Option<Spanned<Vec<Text>>>,
}

/// `spec.verify[i]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct VerifyRule {
    pub(crate) images: Spanned<Vec<Text>>,
    pub(crate) keys: Option<Spanned<Vec<Spanned<Key>>>>,
    pub(crate) keyless: Option<Spanned<Vec<Spanned<KeylessIdentity>>>>,
    pub(crate) trusted_root: Option<Text>,
    pub(crate) tuf: Option<Spanned<Tuf>>,
    pub(crate) multi_arch: Option<Text>,
    pub(crate) require: Option<Spanned<Require>>,
}

/// `spec.verify[i].keyless[j]`: one accepted signer identity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct KeylessIdentity {
    pub(crate) issuer: Option<Text>,
    pub(crate) issuer_reg_exp: Option<Text>,
    pub(crate) subject: Option<Text>,
    pub(crate) subject_reg_exp: Option<Text>,
    /// Fulcio CI claims by name, each compared for equality.
    pub(crate) claims: Option<BTreeMap<String, Text>>,
}

/// `spec.verify[i].tuf`: the TUF repository the trusted root is
/// refreshed from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Tuf {
    pub(crate) url: Option<Text>,
    /// The TUF `root.json` file trusted at first.
    pub(crate) root: Option<Text>,
    pub(crate) target: Option<Text>,
    pub(crate) refresh: Option<Text>,
}

/// One trusted key: a file or inline PEM.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Key {
    pub(crate) file: Option<Text>,
    pub(crate) pem: Option<Text>,
}

/// `spec.verify[i].require`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Require {
    pub(crate) signature: Option<bool>,
    pub(crate) sbom: Option<Vec<Text>>,
    pub(crate) vulnerabilities: Option<Vulnerabilities>,
}

/// `spec.verify[i].require.vulnerabilities`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Vulnerabilities {
    pub(crate) max_cvss: Option<Spanned<f64>>,
    pub(crate) max_age: Option<Text>,
}

/// `spec.verification`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Verification {
    pub(crate) timeout: Option<Text>,
    pub(crate) on_error: Option<Text>,
    pub(crate) cache: Option<Cache>,
}

/// `spec.verification.cache`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Cache {
    pub(crate) allow_ttl: Option<Text>,
    pub(crate) deny_ttl: Option<Text>,
    pub(crate) tag_ttl: Option<Text>,
    pub(crate) max_entries: Option<Spanned<u64>>,
}

/// `spec.mutate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Mutate {
    pub(crate) pin_digests: Option<bool>,
}

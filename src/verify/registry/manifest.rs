//! OCI and Docker manifest, index and descriptor shapes (image-spec v1.1,
//! distribution manifest v2 schema 2), as far as a verifier reads them.

use std::collections::BTreeMap;

use serde::Deserialize;

/// OCI image index (also the referrers API response).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The `Accept` header sent for manifests: every type above.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// A content descriptor.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// `sha256:<hex>` (other algorithms are rejected where used).
    #[serde(default)]
    pub digest: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Artifact type (referrers responses).
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations: hints, never evidence.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The platform of an index entry.
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// An index entry's platform.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Platform {
    /// `amd64`, `arm64`, ... (`unknown` for build attestations).
    #[serde(default)]
    pub architecture: String,
    /// `linux`, `windows`, ... (`unknown` for build attestations).
    #[serde(default)]
    pub os: String,
}

impl Descriptor {
    /// Whether a runtime could pick this index entry to run: every entry
    /// except the `unknown/unknown` ones build tools add for attestations.
    pub fn runnable(&self) -> bool {
        self.platform
            .as_ref()
            .is_none_or(|p| !(p.os == "unknown" && p.architecture == "unknown"))
    }
}

/// An image manifest or an index; the fields of the other kind stay empty.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2 for every type read here.
    #[serde(default)]
    pub schema_version: u32,
    /// The body's own media type, when it says.
    #[serde(default)]
    pub media_type: Option<String>,
    /// Artifact type of an artifact manifest.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Config descriptor (manifests).
    #[serde(default)]
    pub config: Option<Descriptor>,
    /// Layers (manifests).
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// Entries (indexes).
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

impl Manifest {
    /// Parses manifest bytes; `content_type` (without parameters) must agree
    /// with the body's `mediaType` when both are present.
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Option<Manifest> {
        let m: Manifest = serde_json::from_slice(bytes).ok()?;
        let declared = content_type.map(|c| c.split(';').next().unwrap_or("").trim());
        if let (Some(body), Some(header)) = (m.media_type.as_deref(), declared)
            && !header.is_empty()
            && header != "application/json"
            && !body.eq_ignore_ascii_case(header)
        {
            return None;
        }
        Some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_media_type() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"x","digest":"sha256:ab","size":3,"artifactType":"t","annotations":{"a":"b"}}]}"#;
        let m = Manifest::parse(
            body,
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(m.manifests[0].artifact_type.as_deref(), Some("t"));
        assert!(Manifest::parse(body, Some(OCI_MANIFEST)).is_none());
        assert!(Manifest::parse(b"{", None).is_none());
        assert!(Manifest::parse(br#"{"layers":[{"annotations":{"a":1}}]}"#, None).is_none());
    }
}

//! Compiling the supply-chain fields: `spec.verify`, `spec.verification`,
//! `spec.registries.insecure`/`auth`/`ca` and `spec.mutate`, every error with
//! its location. Key and credential files are read here, through the
//! caller's [`SideFiles`](super::SideFiles), so a missing or wrong key fails
//! `policy validate`, not a review.

use std::time::Duration;

use serde_saphyr::Location;

use super::access::{CaBundle, Credentials};
use super::compile::Compiler;
use super::error::CompileErrorKind as Kind;
use super::keys::{KeySet, PublicKey};
use super::requirement::{MultiArch, Requirement, SbomKind, VulnLimits};
use super::source::{self, Text};
use super::supply::CacheConfig;
use super::supply::{MAX_VERIFICATION_TIMEOUT, OnError, SupplyChain, VerifyRule, text_id};

impl Compiler<'_> {
    /// Reads a file the policy names, remembering it for watching.
    pub(super) fn read_side(&mut self, path: &str) -> Result<String, String> {
        self.files.push(path.into());
        self.side_files.read(path)
    }

    pub(super) fn supply(&mut self, spec: &source::Spec) -> SupplyChain {
        let mut out = SupplyChain::default();
        for (i, rule) in spec.verify.iter().flatten().enumerate() {
            if let Some(rule) = self.verify_rule(rule, &format!("spec.verify[{i}]")) {
                out.rules.push(rule);
            }
        }
        if let Some(r) = &spec.registries {
            for (i, host) in r.insecure.iter().flatten().enumerate() {
                match insecure_host(&host.value) {
                    Ok(h) => out.insecure.push(h),
                    Err(e) => self.error(
                        Kind::Value,
                        &host.referenced,
                        format!("spec.registries.insecure[{i}]: {e}"),
                    ),
                }
            }
            if let Some(auth) = &r.auth {
                let parsed = self.read_side(&auth.value).and_then(|text| {
                    Credentials::from_dockerconfigjson(&text)
                        .map(|c| (c, text_id(&text)))
                        .map_err(|e| e.to_string())
                });
                match parsed {
                    Ok((credentials, id)) => {
                        out.credentials = credentials;
                        out.credentials_id = Some(id);
                    }
                    Err(e) => self.error(
                        Kind::Value,
                        &auth.referenced,
                        format!("spec.registries.auth: {e}"),
                    ),
                }
            }
            if let Some(ca) = &r.ca {
                let parsed = self.read_side(&ca.value).and_then(|text| {
                    CaBundle::from_pem(&text).map_err(|e| format!("{:?} {e}", ca.value))
                });
                match parsed {
                    Ok(bundle) => out.ca = bundle,
                    Err(e) => self.error(
                        Kind::Value,
                        &ca.referenced,
                        format!("spec.registries.ca: {e}"),
                    ),
                }
            }
        }
        if let Some(v) = &spec.verification {
            if let Some(t) = &v.timeout {
                out.timeout = self.duration(t, "spec.verification.timeout");
                if let Some(d) = out.timeout
                    && (d.is_zero() || d > MAX_VERIFICATION_TIMEOUT)
                {
                    self.error(
                        Kind::Value,
                        &t.referenced,
                        format!(
                            "spec.verification.timeout: {:?} must be above 0 and at most {}s (below the apiserver's webhook timeout)",
                            t.value,
                            MAX_VERIFICATION_TIMEOUT.as_secs()
                        ),
                    );
                }
            }
            if let Some(e) = &v.on_error {
                out.on_error = match e.value.as_str() {
                    "deny" => OnError::Deny,
                    "allow" => OnError::Allow,
                    other => {
                        self.error(
                            Kind::Value,
                            &e.referenced,
                            format!("spec.verification.onError: unknown value {other:?}: expected \"deny\" or \"allow\""),
                        );
                        OnError::Deny
                    }
                };
            }
            if let Some(c) = &v.cache {
                out.cache = self.cache(c);
            }
        }
        out.pin_digests = spec
            .mutate
            .as_ref()
            .and_then(|m| m.pin_digests)
            .unwrap_or(false);
        out
    }

    fn cache(&mut self, c: &source::Cache) -> CacheConfig {
        let mut out = CacheConfig::default();
        let field = "spec.verification.cache";
        for (value, slot, name) in [
            (&c.allow_ttl, &mut out.allow_ttl, "allowTtl"),
            (&c.deny_ttl, &mut out.deny_ttl, "denyTtl"),
            (&c.tag_ttl, &mut out.tag_ttl, "tagTtl"),
        ] {
            if let Some(text) = value
                && let Some(d) = self.duration(text, &format!("{field}.{name}"))
            {
                *slot = d;
            }
        }
        if let Some(max) = &c.max_entries {
            match usize::try_from(max.value) {
                Ok(n) if n >= 1 => out.max_entries = n,
                _ => self.error(
                    Kind::Value,
                    &max.referenced,
                    format!("{field}.maxEntries: {} must be at least 1", max.value),
                ),
            }
        }
        out
    }

    fn duration(&mut self, text: &Text, field: &str) -> Option<Duration> {
        match super::parse_duration(&text.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(Kind::Value, &text.referenced, format!("{field}: {e}"));
                None
            }
        }
    }

    fn verify_rule(&mut self, rule: &source::VerifyRule, field: &str) -> Option<VerifyRule> {
        let before = self.error_count();
        if rule.images.value.is_empty() {
            self.error(
                Kind::Pattern,
                &rule.images.referenced,
                format!("{field}.images is empty: list at least one image pattern"),
            );
        }
        let images = self.patterns(&rule.images.value, &format!("{field}.images"));
        let keys = match &rule.keys {
            Some(keys) => self.keys(&keys.value, &keys.referenced, field),
            None => KeySet::new(Vec::new()),
        };
        let keyless = self.keyless(rule, field);
        if rule.keys.is_none() && rule.keyless.is_none() {
            self.error(
                Kind::Value,
                &rule.images.referenced,
                format!(
                    "{field}: list keys (cosign public keys), keyless (signer identities), or both"
                ),
            );
        }
        let multi_arch = match &rule.multi_arch {
            None => MultiArch::Index,
            Some(text) => MultiArch::parse(&text.value).unwrap_or_else(|| {
                self.error(
                    Kind::Value,
                    &text.referenced,
                    format!("{field}.multiArch: unknown value {:?}: expected \"index\" or \"allPlatforms\"", text.value),
                );
                MultiArch::Index
            }),
        };
        let requirement = self
            .require(rule.require.as_ref(), field, keys)
            .map(|r| match keyless {
                Some(keyless) => r.with_keyless(keyless),
                None => r,
            })
            .map(|r| r.with_multi_arch(multi_arch));
        let (images, requirement) = (images?, requirement?);
        (self.error_count() == before).then_some(VerifyRule {
            images,
            requirement,
        })
    }

    fn keys(
        &mut self,
        keys: &[serde_saphyr::Spanned<source::Key>],
        at: &Location,
        field: &str,
    ) -> KeySet {
        if keys.is_empty() {
            self.error(
                Kind::Value,
                at,
                format!("{field}.keys is empty: list at least one cosign public key (file or pem)"),
            );
        }
        let mut out = Vec::new();
        for (i, spanned) in keys.iter().enumerate() {
            let key = &spanned.value;
            let name = format!("{field}.keys[{i}]");
            let (text, at) = match (&key.file, &key.pem) {
                (Some(file), None) => match self.read_side(&file.value) {
                    Ok(text) => (text, &file.referenced),
                    Err(e) => {
                        self.error(Kind::Value, &file.referenced, format!("{name}.file: {e}"));
                        continue;
                    }
                },
                (None, Some(pem)) => (pem.value.clone(), &pem.referenced),
                (Some(file), Some(_)) => {
                    self.error(
                        Kind::Value,
                        &file.referenced,
                        format!("{name}: give either file or pem, not both"),
                    );
                    continue;
                }
                (None, None) => {
                    self.error(
                        Kind::Value,
                        &spanned.referenced,
                        format!("{name}: a key needs file or pem"),
                    );
                    continue;
                }
            };
            match PublicKey::from_pem(&text) {
                Ok(k) => out.push(k),
                Err(e) => {
                    let what = if key.file.is_some() { "file" } else { "pem" };
                    self.error(Kind::Value, at, format!("{name}.{what}: {e}"));
                }
            }
        }
        KeySet::new(out)
    }

    fn require(
        &mut self,
        require: Option<&serde_saphyr::Spanned<source::Require>>,
        field: &str,
        keys: KeySet,
    ) -> Option<Requirement> {
        // No `require`: the signature, the obvious meaning of a rule with keys.
        let Some(require) = require else {
            return Some(Requirement::new(keys, true, Vec::new(), None));
        };
        let r = &require.value;
        let mut ok = true;
        let mut sbom = Vec::new();
        for (i, kind) in r.sbom.iter().flatten().enumerate() {
            match SbomKind::parse(&kind.value) {
                Some(k) => sbom.push(k),
                None => {
                    ok = false;
                    self.error(
                        Kind::Value,
                        &kind.referenced,
                        format!(
                            "{field}.require.sbom[{i}]: unknown SBOM kind {:?}: expected \"cyclonedx\" or \"spdx\"",
                            kind.value
                        ),
                    );
                }
            }
        }
        let vulnerabilities = match &r.vulnerabilities {
            None => None,
            Some(v) => {
                let name = format!("{field}.require.vulnerabilities");
                let max_cvss = match &v.max_cvss {
                    Some(c) if c.value.is_finite() && (0.0..=10.0).contains(&c.value) => {
                        Some(c.value)
                    }
                    Some(c) => {
                        self.error(
                            Kind::Value,
                            &c.referenced,
                            format!(
                                "{name}.maxCvss: {} is not a CVSS score (0.0 to 10.0)",
                                c.value
                            ),
                        );
                        None
                    }
                    None => {
                        self.error(
                            Kind::Value,
                            &require.referenced,
                            format!("{name}.maxCvss is required (as 7.0)"),
                        );
                        None
                    }
                };
                let max_age = match &v.max_age {
                    Some(t) => self.duration(t, &format!("{name}.maxAge")),
                    None => {
                        self.error(
                            Kind::Value,
                            &require.referenced,
                            format!("{name}.maxAge is required (as 168h)"),
                        );
                        None
                    }
                };
                match (max_cvss, max_age) {
                    (Some(max_cvss), Some(max_age)) => Some(VulnLimits { max_cvss, max_age }),
                    _ => {
                        ok = false;
                        None
                    }
                }
            }
        };
        let signature = r.signature.unwrap_or(false);
        if ok && !signature && sbom.is_empty() && vulnerabilities.is_none() {
            self.error(
                Kind::Value,
                &require.referenced,
                format!("{field}.require asks for nothing: set signature, sbom or vulnerabilities"),
            );
            return None;
        }
        ok.then(|| Requirement::new(keys, signature, sbom, vulnerabilities))
    }
}

/// `host[:port]` as in image references, lower-cased.
fn insecure_host(text: &str) -> Result<String, String> {
    let t = text.trim();
    let valid = !t.is_empty()
        && t.len() <= 255
        && t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'));
    if valid {
        Ok(t.to_ascii_lowercase())
    } else {
        Err(format!(
            "{text:?} is not a registry host (write host or host:port, as \"127.0.0.1:5000\", without scheme or path)"
        ))
    }
}

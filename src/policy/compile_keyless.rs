//! Compiling a `verify` rule's keyless half: `keyless[]` identities
//! (`issuer`/`issuerRegExp`, `subject`/`subjectRegExp`, `claims`) and the
//! `trustedRoot` they chain to, and the TUF repository (`tuf`, compiled in
//! `compile_tuf`) that root may be refreshed from, every error with its
//! location. The root files are
//! read through the caller's [`SideFiles`](super::SideFiles) and
//! remembered, so that a root replaced on disk reloads the policy; a root
//! refreshed over TUF comes from the same caller.

use super::compile::Compiler;
use super::error::CompileErrorKind as Kind;
use super::keyless::{Claim, Identity, Keyless, Matcher, TrustRoot};
use super::source::{self, Text};

impl Compiler<'_> {
    /// The rule's keyless trust, `None` when it lists no identity (or an
    /// error was recorded).
    pub(super) fn keyless(&mut self, rule: &source::VerifyRule, field: &str) -> Option<Keyless> {
        let Some(list) = &rule.keyless else {
            if let Some(root) = &rule.trusted_root {
                self.error(
                    Kind::Value,
                    &root.referenced,
                    format!("{field}.trustedRoot: the root is for keyless identities: list them under {field}.keyless"),
                );
            }
            if let Some(tuf) = &rule.tuf {
                self.error(
                    Kind::Value,
                    &tuf.referenced,
                    format!("{field}.tuf: the repository refreshes the root of keyless identities: list them under {field}.keyless"),
                );
            }
            return None;
        };
        if list.value.is_empty() {
            self.error(
                Kind::Value,
                &list.referenced,
                format!(
                    "{field}.keyless is empty: list at least one identity (issuer and subject)"
                ),
            );
        }
        let mut identities = Vec::new();
        for (i, spanned) in list.value.iter().enumerate() {
            let name = format!("{field}.keyless[{i}]");
            if let Some(identity) = self.identity(&spanned.value, &spanned.referenced, &name) {
                identities.push(identity);
            }
        }
        let tuf = rule
            .tuf
            .as_ref()
            .and_then(|t| self.tuf(&t.value, &t.referenced, field));
        let starting = match &rule.trusted_root {
            None => Some(TrustRoot::production()),
            Some(path) => self.trusted_root(path, field),
        };
        // The root last refreshed over TUF replaces the starting one (the
        // server checked it before handing it over; one that still does not
        // build leaves the starting root in force).
        let refreshed = tuf
            .as_ref()
            .and_then(|source| self.side_files.tuf_target(source))
            .and_then(|text| TrustRoot::from_json(&text).ok());
        // One source per repository: rules naming it with different
        // intervals get the shortest.
        if let Some(source) = tuf {
            match self.tuf.iter_mut().find(|s| s.id() == source.id()) {
                Some(known) if known.refresh() > source.refresh() => *known = source,
                Some(_) => {}
                None => self.tuf.push(source),
            }
        }
        let root = starting.map(|starting| refreshed.unwrap_or(starting));
        (identities.len() == list.value.len() && !identities.is_empty())
            .then_some(())
            .and(root)
            .map(|root| Keyless::new(identities, root))
    }

    fn trusted_root(&mut self, path: &Text, field: &str) -> Option<TrustRoot> {
        let text = match self.read_side(&path.value) {
            Ok(text) => text,
            Err(e) => {
                self.error(
                    Kind::Value,
                    &path.referenced,
                    format!("{field}.trustedRoot: {e}"),
                );
                return None;
            }
        };
        match TrustRoot::from_json(&text) {
            Ok(root) => Some(root),
            Err(e) => {
                let place = match e.at {
                    Some((line, column)) => format!("{:?} line {line} column {column}", path.value),
                    None => format!("{:?}", path.value),
                };
                self.error(
                    Kind::Value,
                    &path.referenced,
                    format!(
                        "{field}.trustedRoot: {place}: not a usable Sigstore trusted root: {e}"
                    ),
                );
                None
            }
        }
    }

    fn identity(
        &mut self,
        identity: &source::KeylessIdentity,
        at: &serde_saphyr::Location,
        name: &str,
    ) -> Option<Identity> {
        let issuer = self.matcher(
            identity.issuer.as_ref(),
            identity.issuer_reg_exp.as_ref(),
            at,
            &format!("{name}.issuer"),
        );
        let subject = self.matcher(
            identity.subject.as_ref(),
            identity.subject_reg_exp.as_ref(),
            at,
            &format!("{name}.subject"),
        );
        let mut claims = Vec::new();
        let mut claims_ok = true;
        for (key, value) in identity.claims.iter().flatten() {
            match Claim::parse(key) {
                Some(claim) if !value.value.is_empty() => claims.push((claim, value.value.clone())),
                Some(_) => {
                    claims_ok = false;
                    self.error(
                        Kind::Value,
                        &value.referenced,
                        format!("{name}.claims.{key} is empty: give the exact value the certificate must carry"),
                    );
                }
                None => {
                    claims_ok = false;
                    let known: Vec<&str> = Claim::ALL.iter().map(|c| c.name()).collect();
                    self.error(
                        Kind::Value,
                        &value.referenced,
                        format!(
                            "{name}.claims: unknown claim {key:?}: expected one of {}",
                            known.join(", ")
                        ),
                    );
                }
            }
        }
        let (issuer, subject) = (issuer?, subject?);
        claims_ok.then(|| Identity::new(issuer, subject, claims))
    }

    /// `exact` or `pattern` (one of them), as a matcher.
    fn matcher(
        &mut self,
        exact: Option<&Text>,
        pattern: Option<&Text>,
        at: &serde_saphyr::Location,
        field: &str,
    ) -> Option<Matcher> {
        match (exact, pattern) {
            (Some(text), None) if text.value.is_empty() => {
                self.error(Kind::Value, &text.referenced, format!("{field} is empty"));
                None
            }
            (Some(text), None) => Some(Matcher::Exact(text.value.clone())),
            (None, Some(re)) if re.value.is_empty() => {
                self.error(
                    Kind::Value,
                    &re.referenced,
                    format!("{field}RegExp is empty"),
                );
                None
            }
            (None, Some(re)) => match Matcher::pattern(&re.value) {
                Ok(m) => Some(m),
                Err(e) => {
                    let detail = e.to_string().replace('\n', " ");
                    self.error(
                        Kind::Value,
                        &re.referenced,
                        format!(
                            "{field}RegExp: invalid regular expression {:?}: {detail}",
                            re.value
                        ),
                    );
                    None
                }
            },
            (Some(text), Some(_)) => {
                self.error(
                    Kind::Value,
                    &text.referenced,
                    format!("{field}: give {field} or {field}RegExp, not both"),
                );
                None
            }
            (None, None) => {
                self.error(
                    Kind::Value,
                    at,
                    format!("{field}: give {field} (exact) or {field}RegExp (a regular expression matching the whole value)"),
                );
                None
            }
        }
    }
}

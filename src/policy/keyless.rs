//! Keyless trust: the signer identities a `verify` rule accepts
//! ([`Identity`]: OIDC issuer, certificate subject, Fulcio CI claims) and
//! the Sigstore trusted root their certificates must chain to
//! ([`TrustRoot`]).
//!
//! Regular expressions match the whole value: they are compiled anchored,
//! so `mycorp` does not match `https://github.com/mycorp/app/...`.

use std::fmt;
use std::sync::{Arc, OnceLock};

use sha2::{Digest as _, Sha256};
use sigstore_verify::crypto::FulcioCiClaims;
use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};

/// How one certificate value is compared.
#[derive(Clone)]
pub enum Matcher {
    /// Equal to this text.
    Exact(String),
    /// Wholly matched by this expression (kept with its source text).
    Pattern(regex::Regex, String),
}

impl Matcher {
    /// An anchored expression: the whole value must match `source`.
    pub fn pattern(source: &str) -> Result<Matcher, regex::Error> {
        // The expression alone first: its errors are reported as written,
        // and one that only parses inside the anchoring group (`a)|(b`,
        // which would leave `b` unanchored) is rejected.
        regex::RegexBuilder::new(source)
            .size_limit(1 << 20)
            .build()?;
        let anchored = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()?;
        Ok(Matcher::Pattern(anchored, source.to_owned()))
    }

    /// Whether `value` is accepted.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(text) => text == value,
            Matcher::Pattern(re, _) => re.is_match(value),
        }
    }

    fn fingerprint(&self, h: &mut Sha256) {
        let (tag, text) = match self {
            Matcher::Exact(text) => (b'=', text),
            Matcher::Pattern(_, source) => (b'~', source),
        };
        h.update([tag]);
        field(h, text);
    }
}

/// `bytes` into a fingerprint, length first: no two sequences of fields
/// hash alike, whatever bytes they hold.
pub(super) fn field(h: &mut Sha256, bytes: impl AsRef<[u8]>) {
    let bytes = bytes.as_ref();
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Exact(text) => write!(f, "{text:?}"),
            Matcher::Pattern(_, source) => write!(f, "/{source}/"),
        }
    }
}

macro_rules! claims {
    ($($variant:ident $name:literal $oid:literal $field:ident;)*) => {
        /// A Fulcio certificate claim about the CI workload (an extension
        /// under `1.3.6.1.4.1.57264.1`), named as in Fulcio's OID list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Claim {
            $(
                #[doc = concat!("`", $name, "` (OID `1.3.6.1.4.1.57264.1.", $oid, "`).")]
                $variant,
            )*
        }

        impl Claim {
            /// Every claim, in OID order.
            pub const ALL: &[Claim] = &[$(Claim::$variant),*];

            /// The policy spelling.
            pub fn name(self) -> &'static str {
                match self { $(Claim::$variant => $name,)* }
            }

            /// The policy spelling read back.
            pub fn parse(name: &str) -> Option<Claim> {
                match name { $($name => Some(Claim::$variant),)* _ => None }
            }

            fn value(self, claims: &FulcioCiClaims) -> Option<&str> {
                match self { $(Claim::$variant => claims.$field.as_deref(),)* }
            }
        }
    };
}

claims! {
    BuildSignerUri "buildSignerURI" "9" build_signer_uri;
    BuildSignerDigest "buildSignerDigest" "10" build_signer_digest;
    RunnerEnvironment "runnerEnvironment" "11" runner_environment;
    SourceRepositoryUri "sourceRepositoryURI" "12" source_repository_uri;
    SourceRepositoryDigest "sourceRepositoryDigest" "13" source_repository_digest;
    SourceRepositoryRef "sourceRepositoryRef" "14" source_repository_ref;
    SourceRepositoryIdentifier "sourceRepositoryIdentifier" "15" source_repository_identifier;
    SourceRepositoryOwnerUri "sourceRepositoryOwnerURI" "16" source_repository_owner_uri;
    SourceRepositoryOwnerIdentifier "sourceRepositoryOwnerIdentifier" "17" source_repository_owner_identifier;
    BuildConfigUri "buildConfigURI" "18" build_config_uri;
    BuildConfigDigest "buildConfigDigest" "19" build_config_digest;
    BuildTrigger "buildTrigger" "20" build_trigger;
    RunInvocationUri "runInvocationURI" "21" run_invocation_uri;
    SourceRepositoryVisibility "sourceRepositoryVisibilityAtSigning" "22" source_repository_visibility_at_signing;
    DeploymentEnvironment "deploymentEnvironment" "23" deployment_environment;
}

/// What a verified certificate says about its signer.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The subject alternative name (URI or e-mail).
    pub subject: &'a str,
    /// The OIDC issuer (extension `.1.8`, else the legacy `.1.1`).
    pub issuer: &'a str,
    /// The CI workload claims.
    pub claims: &'a FulcioCiClaims,
}

/// One accepted signer identity: every part must match.
#[derive(Debug, Clone)]
pub struct Identity {
    issuer: Matcher,
    subject: Matcher,
    claims: Vec<(Claim, String)>,
}

impl Identity {
    /// An identity; `claims` are exact-match extension values.
    pub fn new(issuer: Matcher, subject: Matcher, mut claims: Vec<(Claim, String)>) -> Identity {
        claims.sort();
        claims.dedup();
        Identity {
            issuer,
            subject,
            claims,
        }
    }

    /// Whether a verified certificate's signer is this identity.
    pub fn accepts(&self, signer: &Signer<'_>) -> bool {
        self.issuer.matches(signer.issuer)
            && self.subject.matches(signer.subject)
            && self
                .claims
                .iter()
                .all(|(claim, want)| claim.value(signer.claims) == Some(want.as_str()))
    }

    fn fingerprint(&self, h: &mut Sha256) {
        self.issuer.fingerprint(h);
        self.subject.fingerprint(h);
        h.update((self.claims.len() as u64).to_be_bytes());
        for (claim, value) in &self.claims {
            field(h, claim.name());
            field(h, value);
        }
    }
}

/// Why a trusted root could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TrustRootError {
    /// Line and column in the JSON, when the error has one.
    pub at: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

/// A Sigstore trusted root, prepared for verification: Fulcio CAs, Rekor
/// logs, CT logs and timestamp authorities, each with its validity window.
#[derive(Clone)]
pub struct TrustRoot {
    verifier: Arc<sigstore_verify::Verifier>,
    id: [u8; 32],
    embedded: bool,
}

impl TrustRoot {
    /// Parses a `trusted_root.json` and prepares its keys and certificates.
    pub fn from_json(text: &str) -> Result<TrustRoot, TrustRootError> {
        TrustRoot::build(text, false)
    }

    /// The Sigstore public-good production root built into the binary.
    pub fn production() -> TrustRoot {
        static ROOT: OnceLock<TrustRoot> = OnceLock::new();
        ROOT.get_or_init(|| {
            TrustRoot::build(SIGSTORE_PRODUCTION_TRUSTED_ROOT, true)
                .unwrap_or_else(|e| unreachable!("the embedded trusted root is valid: {e}"))
        })
        .clone()
    }

    fn build(text: &str, embedded: bool) -> Result<TrustRoot, TrustRootError> {
        // serde_json for the syntax and shape, so the error has a place.
        let located = |e: serde_json::Error| TrustRootError {
            at: Some((e.line(), e.column())),
            message: e.to_string(),
        };
        // Strictly first (an unpaired UTF-16 escape in an ignored key passes
        // the typed read), then the shape (`TrustedRoot::from_json` is this
        // same read, without the place).
        serde_json::from_str::<serde_json::Value>(text).map_err(located)?;
        let root: TrustedRoot = serde_json::from_str(text).map_err(located)?;
        if root.certificate_authorities.is_empty() && root.tlogs.is_empty() {
            return Err(TrustRootError {
                at: None,
                message: "no certificate authority and no transparency log: nothing to trust"
                    .into(),
            });
        }
        crate::crypto::install();
        let verifier = sigstore_verify::Verifier::new(&root).map_err(|e| TrustRootError {
            at: None,
            message: e.to_string(),
        })?;
        Ok(TrustRoot {
            verifier: Arc::new(verifier),
            id: Sha256::digest(text.as_bytes()).into(),
            embedded,
        })
    }

    /// The prepared verifier.
    pub fn verifier(&self) -> &sigstore_verify::Verifier {
        &self.verifier
    }

    /// Whether this is the embedded public-good root.
    pub fn is_embedded(&self) -> bool {
        self.embedded
    }

    /// sha256 of the root's JSON text.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }
}

impl fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustRoot")
            .field("embedded", &self.embedded)
            .field("sha256", &hex(&self.id[..6]))
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The keyless half of a rule: identities and the root they chain to.
#[derive(Debug, Clone)]
pub struct Keyless {
    identities: Vec<Identity>,
    root: TrustRoot,
}

impl Keyless {
    /// Keyless trust; any one identity suffices.
    pub fn new(identities: Vec<Identity>, root: TrustRoot) -> Keyless {
        Keyless { identities, root }
    }

    /// The accepted identities.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The trusted root.
    pub fn root(&self) -> &TrustRoot {
        &self.root
    }

    /// Whether any identity accepts `signer`.
    pub fn accepts(&self, signer: &Signer<'_>) -> bool {
        self.identities.iter().any(|i| i.accepts(signer))
    }

    pub(super) fn fingerprint(&self, h: &mut Sha256) {
        h.update(b"keyless\0");
        h.update(self.root.id);
        h.update((self.identities.len() as u64).to_be_bytes());
        for identity in &self.identities {
            identity.fingerprint(h);
        }
    }
}

#[cfg(test)]
mod tests;

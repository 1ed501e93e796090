//! How the verifier may reach registries, as the policy says it
//! (`spec.registries.auth` and `.ca`): [`Credentials`] per registry host
//! from a dockerconfigjson, and private CAs ([`CaBundle`]). Parsed while
//! compiling, so a bad file is a located policy error; the registry client
//! uses them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Deserialize;

/// Basic credentials per registry host, from a dockerconfigjson file.
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, (String, String)>,
}

/// The hosts only: user names and passwords are never printed.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_host.keys()).finish()
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Why a dockerconfigjson could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid dockerconfigjson: {0}")]
pub struct CredentialsError(String);

impl Credentials {
    /// Reads `{"auths": {"host": {"auth": base64("user:pass")}}}` (or
    /// `username`/`password`). Keys may be URLs; `index.docker.io` and
    /// `registry-1.docker.io` are Docker Hub.
    pub fn from_dockerconfigjson(text: &str) -> Result<Credentials, CredentialsError> {
        let cfg: DockerConfig =
            serde_json::from_str(text).map_err(|e| CredentialsError(e.to_string()))?;
        let mut by_host = BTreeMap::new();
        for (key, entry) in cfg.auths {
            let pair = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let raw = STANDARD
                        .decode(auth.trim())
                        .map_err(|_| CredentialsError(format!("auth of {key:?} is not base64")))?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| CredentialsError(format!("auth of {key:?} is not UTF-8")))?;
                    let (u, p) = text.split_once(':').ok_or_else(|| {
                        CredentialsError(format!("auth of {key:?} is not user:password"))
                    })?;
                    (u.to_owned(), p.to_owned())
                }
                (_, Some(u), Some(p)) => (u, p),
                _ => continue,
            };
            by_host.insert(normalize_host(&key), pair);
        }
        Ok(Credentials { by_host })
    }

    /// The `Authorization: Basic ...` value for `host`, if configured.
    pub fn basic(&self, host: &str) -> Option<String> {
        let (u, p) = self.by_host.get(&normalize_host(host))?;
        Some(format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))
    }
}

fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if crate::reference::is_docker_hub_host(&host) {
        crate::reference::DOCKER_HUB.to_owned()
    } else {
        host
    }
}

/// Certificates of private CAs trusted for registry TLS, parsed from a PEM
/// bundle (`spec.registries.ca`). Empty by default.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CaBundle {
    certs: Arc<[CertificateDer<'static>]>,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaBundle({} certificates)", self.certs.len())
    }
}

/// Why a CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    /// The text is not well-formed PEM.
    #[error("not a valid PEM bundle: {0}")]
    Pem(String),
    /// No `CERTIFICATE` block in the text.
    #[error("holds no PEM certificate")]
    Empty,
    /// A certificate that cannot serve as a trust anchor.
    #[error("certificate #{index} is not a usable CA certificate: {reason}")]
    Unusable {
        /// 1-based position in the bundle.
        index: usize,
        /// The parser's reason.
        reason: String,
    },
}

impl CaBundle {
    /// Parses every `CERTIFICATE` block of `pem` (other blocks are
    /// ignored); each must be a certificate rustls accepts as a trust
    /// anchor, and there must be at least one.
    pub fn from_pem(pem: &str) -> Result<CaBundle, CaBundleError> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CaBundleError::Pem(e.to_string()))?;
        if certs.is_empty() {
            return Err(CaBundleError::Empty);
        }
        let mut scratch = rustls::RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            scratch
                .add(cert.clone())
                .map_err(|e| CaBundleError::Unusable {
                    index: i + 1,
                    reason: e.to_string(),
                })?;
        }
        Ok(CaBundle {
            certs: certs.into(),
        })
    }

    /// Whether no certificate is configured.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// How many certificates the bundle holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// The certificates, in bundle order.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerconfigjson() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"a","password":"b:c"},"x":{}}}"#;
        let c = Credentials::from_dockerconfigjson(text).unwrap();
        assert_eq!(c.basic("docker.io").as_deref(), Some("Basic dTpw"));
        assert_eq!(
            c.basic("127.0.0.1:5000"),
            Some(format!("Basic {}", STANDARD.encode("a:b:c")))
        );
        assert_eq!(c.basic("x"), None);
        assert!(Credentials::from_dockerconfigjson(r#"{"auths":{"h":{"auth":"!!"}}}"#).is_err());
        assert!(Credentials::from_dockerconfigjson("[").is_err());
    }
}

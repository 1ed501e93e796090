//! TLS for the webhook listener: rustls with the `ring` provider, ALPN `h2`
//! and `http/1.1`, optional client-certificate verification (mTLS), and
//! certificates that can be replaced while the server runs.
//!
//! The serving pair lives in one `ArcSwap<CertifiedKey>` read by a
//! [`ResolvesServerCert`] at every handshake, so a reload never fails or
//! stalls a handshake: a handshake sees the old pair or the new one. The
//! client CA, when given, is part of the `ServerConfig`, which is swapped
//! whole when the CA file changes. The two are independent (a certificate
//! does not depend on which CA verifies clients), so two swaps do not tear.
//!
//! This module reads files and builds configs; deciding when to reload is
//! [`reload`](super::reload)'s job.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::config::TlsFiles;

/// Why a TLS file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not PEM of the expected kind.
    #[error("{} is not a valid PEM {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected (`certificate`, `private key`).
        what: &'static str,
        /// The PEM error.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// The file holds no certificate.
    #[error("{} holds no certificate", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key cannot be used, or does not belong to the certificate.
    #[error("{} does not hold a usable private key for {}", key.display(), cert.display())]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// The CA bundle is unusable (no certificate rustls accepts).
    #[error("{} is not a usable client CA bundle", path.display())]
    ClientCa {
        /// The CA file.
        path: PathBuf,
        /// The verifier error.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the configuration.
    #[error("cannot build the TLS configuration")]
    Config(#[source] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its key, and checks that they match.
pub(crate) fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(cert)?;
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::Pem {
        path: key.to_owned(),
        what: "private key",
        source,
    })?;
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|source| TlsError::Key {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })
}

/// Hands out the current serving pair at every handshake.
pub(crate) struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertResolver").finish_non_exhaustive()
    }
}

impl CertResolver {
    pub(crate) fn new(initial: CertifiedKey) -> CertResolver {
        CertResolver {
            current: ArcSwap::from_pointee(initial),
        }
    }

    /// Puts a new pair in force for every later handshake.
    pub(crate) fn store(&self, key: CertifiedKey) {
        self.current.store(Arc::new(key));
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The listener's TLS state: the certificate resolver and the current
/// `ServerConfig` (which changes only when the client CA does).
pub(crate) struct TlsState {
    pub(crate) files: TlsFiles,
    pub(crate) resolver: Arc<CertResolver>,
    config: ArcSwap<ServerConfig>,
}

impl fmt::Debug for TlsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsState")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsState {
    /// Loads every file once; any error is a start-up error.
    pub(crate) fn load(files: TlsFiles) -> Result<TlsState, TlsError> {
        let resolver = Arc::new(CertResolver::new(load_certified_key(
            &files.cert,
            &files.key,
        )?));
        let config = server_config(&resolver, files.client_ca.as_deref())?;
        Ok(TlsState {
            files,
            resolver,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The config for the next handshake.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.config.load_full()
    }

    /// Re-reads the certificate and key; on error the old pair stays.
    pub(crate) fn reload_certificate(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.files.cert, &self.files.key)?;
        self.resolver.store(key);
        Ok(())
    }

    /// Re-reads the client CA; on error the old config stays.
    pub(crate) fn reload_client_ca(&self) -> Result<(), TlsError> {
        let config = server_config(&self.resolver, self.files.client_ca.as_deref())?;
        self.config.store(Arc::new(config));
        Ok(())
    }
}

fn server_config(
    resolver: &Arc<CertResolver>,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            // Entries rustls cannot parse are skipped here; a bundle with
            // none usable is refused by the verifier builder below.
            let (_added, _ignored) = roots.add_parsable_certificates(certificates(path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|source| TlsError::ClientCa {
                    path: path.to_owned(),
                    source,
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

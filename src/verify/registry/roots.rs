//! [`CaBundle`]: extra trust anchors for registry TLS (a private CA),
//! added to the Mozilla root set, never replacing it.

use std::fmt;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

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

    /// The Mozilla roots plus this bundle.
    pub(crate) fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Every certificate was accepted by `from_pem` already.
        let _ = roots.add_parsable_certificates(self.certs.iter().cloned());
        roots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("../../../tests/fixtures/tls/ca.pem");
    const OTHER: &str = include_str!("../../../tests/fixtures/tls/other-ca.pem");

    #[test]
    fn bundles() {
        let one = CaBundle::from_pem(CA).unwrap();
        assert_eq!(one.len(), 1);
        let two = CaBundle::from_pem(&format!("{CA}\n# comment\n{OTHER}")).unwrap();
        assert_eq!(two.len(), 2);
        let base = CaBundle::default().root_store().len();
        assert_eq!(two.root_store().len(), base + 2);
        assert_ne!(one, two);
        assert_eq!(one, CaBundle::from_pem(CA).unwrap());
        assert!(matches!(CaBundle::from_pem(""), Err(CaBundleError::Empty)));
        assert!(matches!(
            CaBundle::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(CaBundleError::Empty)
        ));
        assert!(matches!(
            CaBundle::from_pem("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(CaBundleError::Pem(_))
        ));
        assert!(matches!(
            CaBundle::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Err(CaBundleError::Unusable { index: 1, .. })
        ));
        assert!(matches!(
            CaBundle::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Err(CaBundleError::Pem(_))
        ));
        assert!(format!("{two:?}").contains("2 certificates"));
    }
}

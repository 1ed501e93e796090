//! The trust anchors of registry TLS: the Mozilla root set, plus the
//! private CAs of `spec.registries.ca` ([`CaBundle`]), never replacing it.

use crate::policy::CaBundle;
#[cfg(test)]
use crate::policy::CaBundleError;

/// The Mozilla roots plus the private CAs of `ca`.
pub(crate) fn root_store(ca: &CaBundle) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Every certificate was accepted by `from_pem` already.
    let _ = roots.add_parsable_certificates(ca.certs().iter().cloned());
    roots
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
        let base = root_store(&CaBundle::default()).len();
        assert_eq!(root_store(&two).len(), base + 2);
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

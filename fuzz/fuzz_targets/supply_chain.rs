//! The parsers of registry and attestation data on arbitrary bytes (all of
//! it hostile: it comes from a registry): OCI/Docker manifests and indexes,
//! DSSE envelopes, in-toto statements and vulnerability predicates never
//! panic, and what they accept is self-consistent.

#![no_main]

use imagegate::verify::registry::{DOCKER_MANIFEST, Manifest, OCI_INDEX, OCI_MANIFEST};
use imagegate::verify::{Digest, Envelope, KeySet, Scan, Statement};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for content_type in [None, Some(OCI_MANIFEST), Some(OCI_INDEX), Some(DOCKER_MANIFEST)] {
        let _ = Manifest::parse(data, content_type);
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(data) {
        // No key trusts anything: verification must fail, never panic.
        assert!(envelope.verified_payload(&KeySet::default()).is_none());
    }
    if let Some(statement) = Statement::parse(data) {
        let zero = Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("digest");
        let _ = statement.names(&zero);
    }
    if let Ok(predicate) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(scan) = Scan::from_predicate(&predicate) {
            assert!(scan.max_cvss >= 0.0 && !scan.max_cvss.is_nan());
        }
    }
});

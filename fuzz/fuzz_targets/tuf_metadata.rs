//! TUF metadata as a repository serves it (`verify[].tuf`): arbitrary bytes
//! offered as the pinned root, a newer root, a timestamp, a snapshot or a
//! targets file never panic the client's verification, and nothing the
//! pinned root's keys did not sign is accepted (the fuzzer cannot forge a
//! signature, so every update must fail).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstore_tuf::TrustedMetadataSet;

/// A real python-tuf root (`tests/fixtures/tuf/repo.py init`).
const ROOT: &[u8] = include_bytes!("../../tests/fixtures/tuf/root.json");

fuzz_target!(|data: &[u8]| {
    imagegate::crypto::install();
    let _ = TrustedMetadataSet::from_root(data);
    let now = jiff::Timestamp::now();
    let mut set = TrustedMetadataSet::from_root(ROOT).expect("the fixture root");
    assert!(set.update_root(data).is_err(), "an unsigned root was accepted");
    assert!(
        set.update_timestamp(data, now).is_err(),
        "an unsigned timestamp was accepted"
    );
    assert!(set.update_snapshot(data, now).is_err(), "a snapshot without a timestamp");
    assert!(set.update_targets(data, now).is_err(), "targets without a snapshot");
});

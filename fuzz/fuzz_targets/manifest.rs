//! OCI/Docker manifests and indexes (registry bytes, all hostile) through
//! `Manifest::parse` under every media type a registry may send.
//!
//! Properties: never panics; the `Content-Type` only narrows (a body refused
//! without one is refused with any) and never changes what is read; a body
//! without `mediaType` is read under every type, one with it exactly under
//! the types equal to it ignoring ASCII case, parameters ignored; re-encoding
//! the JSON reads the same manifest; a descriptor digest that parses prints
//! back as written.

#![no_main]

use imagegate::verify::Digest;
use imagegate::verify::registry::{
    DOCKER_LIST, DOCKER_MANIFEST, Manifest, OCI_INDEX, OCI_MANIFEST,
};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

fuzz_target!(|data: &[u8]| {
    let plain = Manifest::parse(data, None);
    let read = |ct: &str| Manifest::parse(data, Some(ct)).map(|m| format!("{m:?}"));
    let Some(m) = plain else {
        for ct in TYPES.iter().chain(&["application/json"]) {
            assert!(read(ct).is_none(), "refused without a type, read as {ct}");
        }
        return;
    };
    let shown = format!("{m:?}");
    assert_eq!(read("application/json").as_ref(), Some(&shown));
    assert_eq!(read("").as_ref(), Some(&shown));
    for ct in TYPES {
        let expected = match m.media_type.as_deref() {
            None => true,
            Some(body) => body.eq_ignore_ascii_case(ct),
        };
        let got = read(ct);
        assert_eq!(
            got.is_some(),
            expected,
            "body {:?} under {ct}",
            m.media_type
        );
        if let Some(got) = got {
            assert_eq!(got, shown, "the content type changed what was read");
        }
        assert_eq!(read(&format!("{ct}; charset=utf-8")), read(ct));
    }

    // Re-encoding (key order, whitespace, escapes) reads the same manifest.
    // Skipped when the generic decoder refuses what the typed one ignored
    // (an out-of-range float in an unknown field).
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let again = serde_json::to_vec(&value).expect("a Value encodes");
        let m2 = Manifest::parse(&again, None).expect("re-encoded manifest refused");
        assert_eq!(format!("{m2:?}"), shown);
    }

    let descriptors = m
        .config
        .iter()
        .chain(&m.layers)
        .chain(&m.manifests)
        .chain(&m.subject);
    for d in descriptors {
        if let Ok(digest) = Digest::parse(&d.digest) {
            assert_eq!(digest.to_string(), d.digest);
        }
    }
});

//! cosign simple-signing payloads on the path production takes: the fuzz
//! input is the payload, signed here with the fixture key, then verified and
//! parsed by `signed_image_digest`.
//!
//! Properties: never panics; a validly signed payload is accepted exactly
//! when it is a cosign container image signature naming a sha256 digest, and
//! the digest returned is the one its `critical.image.docker-manifest-digest`
//! names; one flipped signature byte, or another trusted key, rejects it.

#![no_main]

#[path = "../common/fixture_keys.rs"]
mod fixture_keys;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fixture_keys::*;
use imagegate::policy::KeySet;
use imagegate::verify::{Digest, signed_image_digest};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The documented key rule (cosign decodes with Go's case-insensitive
/// matching): the exact key, else a key equal to it ignoring ASCII case.
fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let map = v.as_object()?;
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fuzz_target!(|payload: &[u8]| {
    let der = sign(payload);
    let der = der.as_slice();
    // Chosen from the input so that a run is reproducible from its input.
    let pick = Digest::of(payload);
    let pick = pick.bytes();
    let encode = |sig: &[u8]| match pick[0] % 3 {
        0 => STANDARD.encode(sig),
        1 => URL_SAFE_NO_PAD.encode(sig),
        _ => format!(" {}\n", STANDARD.encode(sig)),
    };
    let annotation = encode(der);

    let got = signed_image_digest(payload, &annotation, &TRUSTED);
    let root: Option<Value> = serde_json::from_slice(payload).ok();
    let critical = root.as_ref().and_then(|r| field(r, "critical"));
    let typed = critical
        .and_then(|c| field(c, "type"))
        .and_then(Value::as_str)
        == Some(SIGNATURE_TYPE);
    let named = critical
        .and_then(|c| field(c, "image"))
        .and_then(|i| field(i, "docker-manifest-digest"))
        .and_then(Value::as_str);
    let expected = named.filter(|_| typed).and_then(|d| Digest::parse(d).ok());
    assert_eq!(got, expected, "signed payload read differently");
    if let Some(d) = got {
        assert_eq!(Some(d.to_string().as_str()), named);
    }

    let mut flipped = der.to_vec();
    let at = usize::from(pick[1]) % flipped.len();
    flipped[at] ^= pick[2].max(1);
    assert_eq!(
        signed_image_digest(payload, &encode(&flipped), &TRUSTED),
        None,
        "a signature with byte {at} flipped was accepted"
    );
    if got.is_some() {
        assert_eq!(signed_image_digest(payload, &annotation, &OTHER), None);
        assert_eq!(
            signed_image_digest(payload, &annotation, &KeySet::default()),
            None
        );
    }
});

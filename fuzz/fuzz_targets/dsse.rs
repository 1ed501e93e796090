//! DSSE envelopes (`.att` layers and bundles, all hostile) through the
//! `Envelope` decoder and `verified_payload`, signed with the fixture key so
//! that the verification path is reached, not only the decoder.
//!
//! Properties: never panics; with no trusted key nothing verifies; what
//! verifies under the fixture key is exactly the envelope's decoded payload;
//! the envelope re-signed over the spec's PAE verifies exactly when it is an
//! in-toto one, also after the other signatures, and one flipped signature
//! byte rejects it.

#![no_main]

#[path = "../common/fixture_keys.rs"]
mod fixture_keys;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use fixture_keys::*;
use imagegate::policy::KeySet;
use imagegate::verify::{Digest, Envelope};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const IN_TOTO: &str = "application/vnd.in-toto+json";

/// DSSE v1 base64: standard or URL-safe alphabet, padded or not.
fn decode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
}

/// `PAE(type, body)` as the DSSE v1 spec writes it.
fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn envelope(payload_type: &str, payload: &str, sigs: &[String]) -> Envelope {
    let sigs: Vec<Value> = sigs.iter().map(|s| json!({ "sig": s })).collect();
    let text = json!({"payloadType": payload_type, "payload": payload, "signatures": sigs});
    serde_json::from_value(text).expect("a well-formed envelope decodes")
}

fuzz_target!(|data: &[u8]| {
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    assert!(env.verified_payload(&KeySet::default()).is_none());

    let decoded = decode(&env.payload);
    if let Some(body) = env.verified_payload(&TRUSTED) {
        assert_eq!(env.payload_type, IN_TOTO);
        assert_eq!(
            Some(&body),
            decoded.as_ref(),
            "verified bytes are not the payload"
        );
    }

    let Some(body) = decoded else {
        return;
    };
    let der = sign(&pae(&env.payload_type, &body));
    let ours = STANDARD.encode(&der);
    let in_toto = env.payload_type == IN_TOTO;
    let expected = in_toto.then(|| body.clone());

    let resigned = envelope(&env.payload_type, &env.payload, std::slice::from_ref(&ours));
    assert_eq!(resigned.verified_payload(&TRUSTED), expected);

    // Any one good signature suffices, wherever it stands.
    let mut all: Vec<String> = env.signatures.iter().map(|s| s.sig.clone()).collect();
    all.push(ours);
    let appended = envelope(&env.payload_type, &env.payload, &all);
    assert_eq!(appended.verified_payload(&TRUSTED), expected);

    let pick = Digest::of(data);
    let pick = pick.bytes();
    let mut flipped = der.clone();
    let at = usize::from(pick[0]) % flipped.len();
    flipped[at] ^= pick[1].max(1);
    let bad = envelope(
        &env.payload_type,
        &env.payload,
        &[STANDARD.encode(&flipped)],
    );
    assert_eq!(
        bad.verified_payload(&TRUSTED),
        None,
        "byte {at} flipped still verifies"
    );
});

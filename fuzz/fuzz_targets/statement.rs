//! in-toto Statements (v0.1 and v1) through `Statement::parse`, directly and
//! on the production path: inside a DSSE envelope signed with the fixture
//! key, read back by `verified_payload`.
//!
//! Properties: never panics; an accepted statement has a known `_type`;
//! `names` holds for every subject's valid sha256 and not for near misses;
//! re-encoding the JSON reads the same statement; an accepted statement
//! signed into an envelope comes back byte for byte and reads the same.

#![no_main]

#[path = "../common/fixture_keys.rs"]
mod fixture_keys;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fixture_keys::*;
use imagegate::verify::{Digest, Envelope, Statement, pae};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const IN_TOTO: &str = "application/vnd.in-toto+json";
const VERSIONS: [&str; 2] = [
    "https://in-toto.io/Statement/v0.1",
    "https://in-toto.io/Statement/v1",
];

fuzz_target!(|data: &[u8]| {
    let direct = Statement::parse(data);
    let shown = direct.as_ref().map(|s| format!("{s:?}"));

    if let Some(s) = &direct {
        assert!(VERSIONS.contains(&s.kind.as_str()), "{:?}", s.kind);
        let mut named = Vec::new();
        for hex in s.subject.iter().filter_map(|sub| sub.digest.get("sha256")) {
            if let Some(d) = Digest::from_hex(hex) {
                assert_eq!(&d.hex(), hex);
                assert!(s.names(&d));
                named.push(d);
            }
        }
        // Near misses: one hex digit away from a subject, and the input's own hash.
        let mut strangers = vec![Digest::of(data)];
        if let Some(first) = named.first() {
            let mut hex = first.hex();
            let last = if hex.ends_with('0') { '1' } else { '0' };
            hex.pop();
            hex.push(last);
            strangers.push(Digest::from_hex(&hex).expect("64 hex digits"));
        }
        for d in &strangers {
            assert_eq!(s.names(d), named.contains(d));
        }

        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
            let again = serde_json::to_vec(&value).expect("a Value encodes");
            let s2 = Statement::parse(&again).expect("re-encoded statement refused");
            assert_eq!(Some(format!("{s2:?}")), shown);
        }
    }

    // Production reads a statement only from a verified envelope: follow
    // that path for what parses (arbitrary payloads through an envelope are
    // the `dsse` target's; signing every input would slow the search here).
    if direct.is_none() {
        return;
    }
    let der = sign(&pae(IN_TOTO, data));
    let text = json!({
        "payloadType": IN_TOTO,
        "payload": STANDARD.encode(data),
        "signatures": [{"keyid": "", "sig": STANDARD.encode(&der)}],
    });
    let bytes = serde_json::to_vec(&text).expect("a Value encodes");
    let env: Envelope = serde_json::from_slice(&bytes).expect("a well-formed envelope decodes");
    let body = env
        .verified_payload(&TRUSTED)
        .expect("a signed envelope verifies");
    assert_eq!(body, data);
    let enveloped = Statement::parse(&body).map(|s| format!("{s:?}"));
    assert_eq!(enveloped, shown);
});

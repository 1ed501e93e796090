//! `trustedRoot` files: arbitrary bytes never panic the trusted-root
//! loader, and a rejected file says where when the JSON itself is broken.

#![no_main]

use imagegate::policy::TrustRoot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = TrustRoot::from_json(text)
        && serde_json::from_str::<serde_json::Value>(text).is_err()
    {
        assert!(e.at.is_some(), "a syntax error has a place: {e}");
    }
});

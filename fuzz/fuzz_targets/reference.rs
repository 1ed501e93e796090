//! Properties of the reference parser on arbitrary strings: never panics; an
//! accepted reference is printable ASCII, round-trips through its normalized
//! form, and its runtime form (`docker_ref`) parses too; and it never has
//! the shape a container runtime resolves as a local image ID (`ALGO:hex`).

#![no_main]

use imagegate::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(input) else {
        return;
    };
    assert!(
        input.bytes().all(|b| b.is_ascii_graphic()),
        "accepted {input:?}"
    );
    let name = input.split('@').next().unwrap_or(input);
    if let Some((algorithm, hex)) = name.split_once(':') {
        assert!(
            !(["sha256", "sha384", "sha512", "blake3"].contains(&algorithm)
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit())),
            "accepted the local image ID {input:?}"
        );
    }
    let shown = r.to_string();
    let again = Reference::parse(&shown).expect("the normalized form parses");
    assert_eq!(r, again, "round trip of {input:?} via {shown:?}");
    assert_eq!(again.to_string(), shown);
    let pulled = r.docker_ref().to_string();
    let pulled_ref = Reference::parse(&pulled).expect("the runtime form parses");
    assert_eq!(pulled_ref.domain(), r.domain());
    assert!(pulled_ref.components().eq(r.components()));
});

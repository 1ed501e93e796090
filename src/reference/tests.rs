//! Reference parser tests: the upstream vectors, round trips, and hostile
//! strings.

use super::*;
use proptest::prelude::*;
use serde_json::Value;

/// The 140 vectors produced by the upstream Go package (spec/image-reference.md).
const VECTORS: &str = include_str!("../../tests/fixtures/image-reference-vectors.json");

fn field<'v>(v: &'v Value, name: &str) -> Option<&'v str> {
    v.get(name).and_then(Value::as_str)
}

#[test]
fn agrees_with_every_upstream_vector() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).expect("vectors file is JSON");
    assert_eq!(vectors.len(), 140);
    let mut failures = Vec::new();
    for (n, v) in vectors.iter().enumerate() {
        let input = field(v, "input").expect("input");
        let valid = v["valid"].as_bool().expect("valid");
        let got = Reference::parse(input);
        let ok = match (&got, valid) {
            (Ok(r), true) => {
                r.domain() == field(v, "domain").expect("domain")
                    && r.path().to_string() == field(v, "path").expect("path")
                    && r.tag() == field(v, "tag")
                    && r.digest() == field(v, "digest")
                    && r.to_string() == field(v, "normalized").expect("normalized")
                    && r.familiar().to_string() == field(v, "familiar").expect("familiar")
                    && r.docker_ref().to_string() == field(v, "docker_ref").expect("docker_ref")
            }
            (Err(e), false) => e.to_string() == field(v, "error").expect("error"),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "#{} {input:?}: got {got:?} / {:?}",
                n + 1,
                got.as_ref().map(ToString::to_string)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn equal_however_spelled() {
    let a = Reference::parse("nginx").unwrap();
    for other in [
        "docker.io/nginx",
        "docker.io/library/nginx",
        "index.docker.io/library/nginx",
        "library/nginx",
    ] {
        assert_eq!(a, Reference::parse(other).unwrap(), "{other}");
    }
    assert_ne!(
        a,
        Reference::parse("registry-1.docker.io/library/nginx").unwrap()
    );
    assert_ne!(a, Reference::parse("nginx:latest").unwrap());
}

#[test]
fn refuses_hostile_strings() {
    let hostile = [
        "nginx\n",
        "nginx\0",
        "ngi\tnx",
        "nginx\r\n:1",
        "\u{7f}nginx",
        " nginx",
        "nginx ",
        // Cyrillic "е" and "о", fullwidth letters, a zero-width space, a soft hyphen.
        "ghcr.io/myc\u{043e}rp/app:1",
        "d\u{043e}cker.io/nginx",
        "ｎｇｉｎｘ",
        "ghcr.io/app\u{200b}:1",
        "mycorp.registry.io\u{00ad}/app",
        "my\u{2024}corp.io/app",
        "ghcr.io/app:1\u{0301}",
        "ghcr.io//app",
        "ghcr.io/app/",
        "/app",
        "ghcr.io/app:",
        "ghcr.io/app@",
        "ghcr.io/app:1:2",
        "ghcr.io/app@sha256:",
        "host:port/app",
        "[::1",
        "[::1]x/app",
        "a..b/app",
        "-a.b/app",
    ];
    for s in hostile {
        assert!(Reference::parse(s).is_err(), "{s:?} must be refused");
    }
}

#[test]
fn long_inputs_are_linear_and_bounded() {
    let long_domain = format!("{}io/app:1", "a.".repeat(100_000));
    assert!(Reference::parse(&long_domain).is_ok());
    let long_path = format!("example.com/{}", "a".repeat(256));
    assert_eq!(
        Reference::parse(&long_path).unwrap_err().kind(),
        ParseErrorKind::NameTooLong
    );
    let dashes = format!("example.com/a{}", "-".repeat(100_000));
    assert!(Reference::parse(&dashes).is_err());
    let upper = format!("example.com/\u{1}{}", "A".repeat(10_000));
    let err = Reference::parse(&upper).unwrap_err().to_string();
    assert!(
        err.len() < 400,
        "error echo is truncated: {} bytes",
        err.len()
    );
    assert!(
        err.contains("\\u{1}"),
        "control characters are escaped: {err}"
    );
}

/// Valid references built from the grammar, so round trips cover every part.
pub(super) fn arb_reference() -> impl Strategy<Value = String> {
    let label = "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?";
    let host = prop_oneof![
        proptest::collection::vec(label, 2..4).prop_map(|l| l.join(".")),
        Just("localhost".to_owned()),
        Just("[::1]".to_owned()),
        Just("index.docker.io".to_owned()),
        Just("docker.io".to_owned()),
        Just("EXAMPLE.com".to_owned()),
    ];
    let domain = prop_oneof![
        Just(None),
        (host, proptest::option::of(0u32..70000)).prop_map(|(h, p)| Some(match p {
            Some(p) => format!("{h}:{p}"),
            None => h,
        })),
    ];
    let component = "[a-z0-9]{1,4}(([._]|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    let path = proptest::collection::vec(component, 1..4).prop_map(|c| c.join("/"));
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
    let digest = proptest::option::of(prop_oneof![
        "[a-f0-9]{64}".prop_map(|h| format!("sha256:{h}")),
        "[a-f0-9]{128}".prop_map(|h| format!("sha512:{h}")),
    ]);
    (domain, path, tag, digest).prop_map(|(d, p, t, g)| {
        let mut s = d.map(|d| format!("{d}/")).unwrap_or_default();
        s.push_str(&p);
        if let Some(t) = t {
            s.push(':');
            s.push_str(&t);
        }
        if let Some(g) = g {
            s.push('@');
            s.push_str(&g);
        }
        s
    })
}

proptest! {
    #[test]
    fn display_round_trips(input in arb_reference()) {
        if let Ok(r) = Reference::parse(&input) {
            let shown = r.to_string();
            let again = Reference::parse(&shown).expect("a displayed reference parses");
            prop_assert_eq!(r, again);
            prop_assert_eq!(again.to_string(), shown);
            let docker = r.docker_ref().to_string();
            prop_assert!(Reference::parse(&docker).is_ok());
        }
    }

    #[test]
    fn grammar_references_parse(input in arb_reference()) {
        // Everything the generator builds is valid unless it is only a path
        // longer than the limit, which the generator cannot produce.
        prop_assert!(Reference::parse(&input).is_ok(), "{input:?}");
    }

    #[test]
    fn arbitrary_strings_never_panic_and_round_trip(input in "\\PC{0,40}|[a-zA-Z0-9:/@._\\-\\[\\]]{0,40}") {
        if let Ok(r) = Reference::parse(&input) {
            prop_assert!(input.is_ascii());
            prop_assert!(!input.bytes().any(|b| b.is_ascii_control() || b == b' '));
            let shown = r.to_string();
            prop_assert_eq!(Reference::parse(&shown).expect("round trip"), r);
        }
    }
}

#[test]
fn local_image_ids_are_refused_in_every_form() {
    let full = "4f3c9a0e1b2d3c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f";
    let inputs = [
        format!("sha256:{full}"),
        "sha256:4f3c".to_owned(),
        "sha256:4".to_owned(),
        "sha256:4F3C".to_owned(),
        format!("sha384:{}", "a".repeat(96)),
        "sha384:abc".to_owned(),
        format!("sha512:{}", "b".repeat(128)),
        "sha512:0".to_owned(),
        "blake3:abcdef".to_owned(),
        format!("sha256:4f3c@sha256:{full}"),
    ];
    for input in &inputs {
        let err = Reference::parse(input).expect_err(input);
        assert_eq!(err.kind(), ParseErrorKind::LocalImageId, "{input}");
        assert!(err.to_string().contains("local image ID"), "{err}");
    }
    // Names that only look alike are still names: a path in front, another
    // algorithm-like word, a non-hex tag.
    for ok in [
        "library/sha256:4f3c",
        "docker.io/library/sha256:4f3c",
        "sha256",
        "sha256:latest",
        "sha256:4f3g",
        "sha1:4f3c",
        "md5:4f3c",
        "sha256x:4f3c",
    ] {
        assert!(Reference::parse(ok).is_ok(), "{ok}");
    }
}

proptest! {
    #[test]
    fn an_accepted_reference_never_has_the_local_image_id_shape(
        algorithm in prop_oneof![Just("sha256"), Just("sha384"), Just("sha512"), Just("blake3")],
        hex in "[0-9a-fA-F]{1,128}",
        digest in proptest::option::of("[a-f0-9]{64}"),
    ) {
        let mut input = format!("{algorithm}:{hex}");
        if let Some(d) = digest {
            input.push_str("@sha256:");
            input.push_str(&d);
        }
        let err = Reference::parse(&input).expect_err("an image ID shape");
        prop_assert_eq!(err.kind(), ParseErrorKind::LocalImageId);
    }
}

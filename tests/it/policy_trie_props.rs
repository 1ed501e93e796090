//! Property: the trie answers exactly like the plain linear scan of the
//! same patterns (same first matching index) on random rule sets and images.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use imagegate::policy::{MatchStrategy, PatternSetBuilder};
use imagegate::reference::Reference;
use proptest::prelude::*;

/// Small alphabets, so that random patterns and images collide often.
fn label() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "a",
        "b",
        "A",
        "io",
        "docker",
        "registry-1",
        "index",
        "*",
    ])
}

fn component() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["x", "y", "library", "*"])
}

fn port() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", ":5000", ":05000", ":443", ":80", ":0"])
}

fn domain(wild: bool) -> impl Strategy<Value = String> {
    let labels = prop::collection::vec(label(), 1..4);
    let v6 = prop::sample::select(vec!["[::1]", "[0:0::1]", "[fc00::1]", "[::2]"]);
    prop_oneof![
        4 => (labels, port()).prop_map(move |(ls, p)| {
            let ls: Vec<&str> = ls.into_iter().map(|l| if !wild && l == "*" { "b" } else { l }).collect();
            let mut d = ls.join(".");
            // an image domain needs a dot, a port or `localhost` to be one
            if !d.contains('.') && p.is_empty() {
                d.push_str(".io");
            }
            format!("{d}{p}")
        }),
        1 => (v6, port()).prop_map(|(h, p)| format!("{h}{p}")),
        1 => prop::sample::select(vec!["docker.io", "index.docker.io", "registry-1.docker.io", "DOCKER.IO", "localhost"]).prop_map(String::from),
    ]
}

fn pattern() -> impl Strategy<Value = String> {
    let path = prop::collection::vec(component(), 0..4);
    // A short (Docker Hub) pattern may not start with a wildcard: that is
    // refused as ambiguous.
    let short = (
        prop::sample::select(vec!["x", "y", "library"]),
        prop::collection::vec(component(), 0..3),
    )
        .prop_map(|(first, rest)| {
            let mut v = vec![first];
            v.extend(rest);
            v
        });
    prop_oneof![
        3 => (domain(true), path, any::<bool>()).prop_map(|(d, p, dstar)| {
            let mut s = d;
            for c in p {
                s.push('/');
                s.push_str(c);
            }
            if dstar {
                s.push_str("/**");
            }
            s
        }),
        1 => short.prop_map(|p| p.join("/")),
    ]
}

fn image() -> impl Strategy<Value = String> {
    let comps = prop::collection::vec(prop::sample::select(vec!["x", "y", "library", "z"]), 1..5);
    prop_oneof![
        3 => (domain(false), comps.clone()).prop_map(|(d, c)| format!("{d}/{}", c.join("/"))),
        1 => comps.prop_map(|c| c.join("/")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn trie_agrees_with_linear_scan(
        patterns in prop::collection::vec(pattern(), 0..25),
        images in prop::collection::vec(image(), 1..10),
    ) {
        let mut builder = PatternSetBuilder::new();
        for p in &patterns {
            builder.add(p).map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))?;
        }
        let trie = builder.clone().build_with(MatchStrategy::Trie);
        let linear = builder.build_with(MatchStrategy::LinearScan);
        for image in &images {
            let Ok(r) = Reference::parse(image) else { continue };
            prop_assert_eq!(trie.matches(&r), linear.matches(&r), "image {:?}, patterns {:?}", image, patterns);
        }
    }
}

#[test]
fn generators_produce_matches() {
    // Guard against a vacuous property: the alphabets must give hits.
    let mut b = PatternSetBuilder::new();
    b.add("*.io/x").unwrap().add("a.b:5000").unwrap();
    let set = b.build();
    assert_eq!(set.matches(&Reference::parse("a.io/x/y").unwrap()), Some(0));
    assert_eq!(
        set.matches(&Reference::parse("a.b:05000/x").unwrap()),
        Some(1)
    );
}

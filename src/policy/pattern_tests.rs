//! Unit tests of pattern parsing and of the image-side target.

use super::*;
use crate::policy::target::{Host, Ipv6Key, Target, normalize_port};
use crate::reference::Reference;

fn p(text: &str) -> Pattern {
    Pattern::parse(text).unwrap()
}

fn err(text: &str) -> String {
    Pattern::parse(text).unwrap_err().to_string()
}

fn lit(s: &str) -> Segment {
    Segment::Literal(s.into())
}

#[test]
fn short_patterns_are_docker_hub() {
    assert_eq!(p("nginx").path, vec![lit("library"), lit("nginx")]);
    assert_eq!(p("nginx").host, hub_host());
    assert_eq!(p("bitnami/redis").path, vec![lit("bitnami"), lit("redis")]);
}

#[test]
fn a_wildcard_first_component_is_ambiguous_and_refused() {
    for text in ["*", "**", "*/app", "*/*", "**/x", "*/library/nginx"] {
        let err = Pattern::parse(text).expect_err(text).to_string();
        assert!(err.contains("ambiguous"), "{text}: {err}");
        assert!(err.contains("docker.io/**"), "{text}: {err}");
    }
    // A wildcard label of a domain, or a wildcard after the first component,
    // is not ambiguous.
    for text in [
        "*.gcr.io",
        "*.gcr.io/p",
        "docker.io/*",
        "docker.io/**",
        "ghcr.io/*/app",
    ] {
        assert!(Pattern::parse(text).is_ok(), "{text}");
    }
}

#[test]
fn hub_aliases_normalize() {
    for text in [
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
        "Registry.Hub.Docker.Com",
        "DOCKER.IO",
        "docker.io:443",
    ] {
        assert_eq!(p(text).host, hub_host(), "{text}");
        assert_eq!(p(text).port.as_ref(), "", "{text}");
    }
    // Another port is another server.
    assert_eq!(p("docker.io:5000").port.as_ref(), "5000");
    // An explicit Hub path is literal: the `bitnami` namespace.
    assert_eq!(p("docker.io/bitnami").path, vec![lit("bitnami")]);
}

#[test]
fn domains_and_ports() {
    let pat = p("MyCorp.Registry.IO:05000/app");
    assert_eq!(
        pat.host,
        HostPattern::Labels(vec![lit("mycorp"), lit("registry"), lit("io")])
    );
    assert_eq!(pat.port.as_ref(), "5000");
    assert_eq!(p("host:0000").port.as_ref(), "0");
    assert_eq!(
        p("localhost").host,
        HostPattern::Labels(vec![lit("localhost")])
    );
    assert_eq!(p("[0:0::1]:5000").host, HostPattern::Ipv6("[::1]".into()));
    assert_eq!(
        p("*.gcr.io").host,
        HostPattern::Labels(vec![Segment::Star, lit("gcr"), lit("io")])
    );
    assert_eq!(p("Foo/bar").host, HostPattern::Labels(vec![lit("foo")]));
}

#[test]
fn trailing_double_star_is_a_prefix() {
    assert_eq!(p("ghcr.io/mycorp/**"), p("ghcr.io/mycorp"));
    assert_eq!(p("docker.io/**"), p("docker.io"));
}

#[test]
fn rejects_bad_patterns() {
    let cases = [
        ("", "empty pattern"),
        ("nginx:latest", "take no tag"),
        ("ghcr.io/app:v1", "names a tag"),
        ("ghcr.io/app@sha256:abcd", "names a digest"),
        ("ghcr.io//app", "empty path component"),
        ("ghcr.io/app/", "empty path component"),
        ("/app", "empty path component"),
        ("ghcr.io/App", "upper case"),
        ("Nginx", "upper case"),
        ("ghcr.io/**/x", "must be the last"),
        ("**.io", "may only end a path"),
        ("gh*.io", "whole domain label"),
        ("ghcr.io/app*", "whole path component"),
        ("ghcr..io", "empty domain label"),
        ("-ghcr.io/x", "invalid domain label"),
        ("ghcr.io/-x", "invalid path component"),
        ("ghcr.io/a_-b", "invalid path component"),
        ("host:/x", "invalid port"),
        ("host:*/x", "invalid port"),
        ("host:5a/x", "invalid port"),
        ("[fe80::1%eth0]/x", "invalid IPv6"),
        ("[::1", "invalid IPv6"),
        ("[zz::1]/x", "invalid IPv6"),
        ("[::1]x/y", "invalid IPv6"),
        ("ghcr.io /x", "whitespace"),
        ("ghcr.io/x\t", "whitespace"),
        ("ghcr.io/x\u{7}", "control"),
        ("ghcr.io/x\u{0}", "control"),
        ("gсr.io", "non-ASCII"),   // Cyrillic es
        ("ｇhcr.io", "non-ASCII"), // fullwidth g
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{text:?}: {got}");
    }
    assert!(err(&format!("{}.io/x", "a".repeat(64))).contains("longer than 63"));
    assert!(Pattern::parse(&format!("{}.io/x", "a".repeat(63))).is_ok());
    let long = format!("ghcr.io/{}", "a/".repeat(300));
    assert!(err(long.trim_end_matches('/')).contains("longer than"));
}

#[test]
fn path_component_grammar() {
    for ok in ["a", "a.b", "a_b", "a__b", "a---b", "0", "ab-c.d_e"] {
        assert!(is_path_component(ok), "{ok}");
    }
    for bad in [
        "", ".a", "a.", "a___b", "a..b", "a-", "-a", "a_", "A", "a.-b",
    ] {
        assert!(!is_path_component(bad), "{bad}");
    }
}

#[test]
fn ports_normalize() {
    assert_eq!(normalize_port("05000"), "5000");
    assert_eq!(normalize_port("0"), "0");
    assert_eq!(normalize_port("000"), "0");
    assert_eq!(normalize_port("443"), "");
    assert_eq!(normalize_port("0443"), "");
    assert_eq!(normalize_port("4430"), "4430");
}

#[test]
fn targets() {
    let r = Reference::parse("registry-1.docker.io/nginx").unwrap();
    let t = Target::new(&r).unwrap();
    let hub = t.hub.unwrap();
    assert_eq!(hub.components().collect::<Vec<_>>(), ["library", "nginx"]);
    let r = Reference::parse("nginx").unwrap();
    assert!(Target::new(&r).unwrap().hub.is_none());
    // Port 443 is no port: the literal spelling already is canonical.
    let r = Reference::parse("docker.io:0443/bitnami/redis").unwrap();
    let t = Target::new(&r).unwrap();
    assert!(t.hub.is_none());
    assert_eq!(t.literal.port, "");
    let r = Reference::parse("docker.io:0443/redis").unwrap();
    let hub = Target::new(&r).unwrap().hub.unwrap();
    assert_eq!(hub.components().collect::<Vec<_>>(), ["library", "redis"]);
    let r = Reference::parse("my_registry.com/foo").unwrap();
    assert!(Target::new(&r).is_none());
    let r = Reference::parse("[1:2]/foo").unwrap();
    assert!(Target::new(&r).is_none());
    let r = Reference::parse("[0:0::1]:5000/foo").unwrap();
    match Target::new(&r).unwrap().literal.host {
        Host::Ipv6(addr) => assert_eq!(Ipv6Key::new(addr).as_str(), "[::1]"),
        Host::Name(_) => panic!("not v6"),
    }
}

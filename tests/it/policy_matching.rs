//! Registry pattern matching, CONTRACT §3 rules 1–5, and the bypasses an
//! attacker would try. Every case runs against the trie and the linear scan.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use imagegate::policy::{MatchStrategy, PatternSet, PatternSetBuilder};
use imagegate::reference::Reference;

fn set(patterns: &[&str], strategy: MatchStrategy) -> PatternSet {
    let mut b = PatternSetBuilder::new();
    for p in patterns {
        b.add(p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
    }
    b.build_with(strategy)
}

/// Index of the matching pattern; both strategies must agree.
fn find(patterns: &[&str], image: &str) -> Option<usize> {
    let r = Reference::parse(image).unwrap_or_else(|e| panic!("{image:?}: {e}"));
    let trie = set(patterns, MatchStrategy::Trie).matches(&r);
    let linear = set(patterns, MatchStrategy::LinearScan).matches(&r);
    assert_eq!(
        trie, linear,
        "trie and linear scan disagree on {image:?} with {patterns:?}"
    );
    trie
}

fn yes(pattern: &str, images: &[&str]) {
    for image in images {
        assert_eq!(
            find(&[pattern], image),
            Some(0),
            "{pattern:?} should match {image:?}"
        );
    }
}

fn no(pattern: &str, images: &[&str]) {
    for image in images {
        assert_eq!(
            find(&[pattern], image),
            None,
            "{pattern:?} must not match {image:?}"
        );
    }
}

#[test]
fn rule1_images_are_normalized() {
    yes(
        "docker.io/library/nginx",
        &[
            "nginx",
            "nginx:1.25",
            "docker.io/nginx",
            "index.docker.io/library/nginx:latest",
            "library/nginx",
            "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ],
    );
}

#[test]
fn rule2_domain_or_hub_path() {
    yes("docker.io", &["nginx", "bitnami/redis", "docker.io/a/b/c"]);
    yes(
        "docker.io/bitnami",
        &["bitnami/redis", "docker.io/bitnami/redis:7"],
    );
    no("docker.io/bitnami", &["redis", "bitnamix/redis"]);
    yes(
        "nginx",
        &["nginx", "docker.io/library/nginx:1", "library/nginx/sub"],
    );
    no(
        "nginx",
        &["nginxx", "bitnami/nginx", "ghcr.io/nginx", "nginx/nginx"],
    );
    yes(
        "bitnami/redis",
        &["bitnami/redis:7", "docker.io/bitnami/redis"],
    );
    no(
        "bitnami/redis",
        &["redis", "bitnami/redis-cluster", "ghcr.io/bitnami/redis"],
    );
    yes("mycorp.registry.io:5000", &["mycorp.registry.io:5000/app"]);
    yes("localhost", &["localhost/app"]);
    yes("localhost:5000", &["localhost:5000/app"]);
    no("localhost", &["localhost:5000/app", "app"]);
    yes("index.docker.io", &["nginx"]);
    yes("index.docker.io/library/nginx", &["nginx"]);
}

#[test]
fn rule3_domain_as_a_whole() {
    let p = "mycorp.registry.io";
    yes(p, &["mycorp.registry.io/app", "mycorp.registry.io/a/b:1"]);
    no(
        p,
        &[
            "mycorp.registry.io.evil.com/app",
            "mycorp.registry.io:5000/app",
            "evil.mycorp.registry.io/app",
            "registry.io/app",
            "mycorp-registry.io/app",
            "mycorp.registry.iox/app",
            "xmycorp.registry.io/app",
            // a Hub path that spells the domain is not the domain
            "mycorp/registry.io",
        ],
    );
    // case-insensitive
    yes(p, &["MyCorp.Registry.IO/app", "MYCORP.REGISTRY.IO/app"]);
    yes("MyCorp.Registry.IO", &["mycorp.registry.io/app"]);
    // `*` is exactly one label
    yes("*.gcr.io", &["eu.gcr.io/p/app", "US.GCR.IO/p/app"]);
    no(
        "*.gcr.io",
        &["gcr.io/p/app", "a.b.gcr.io/p/app", "eu.gcr.io:5000/p"],
    );
    yes("a.*.c", &["a.b.c/x"]);
    no("a.*.c", &["a.c/x", "a.b.b.c/x"]);
    yes("*:5000", &["registry:5000/x", "localhost:5000/x"]);
    no("*:5000", &["a.b:5000/x", "registry/x"]);
}

#[test]
fn rule3_ports() {
    yes(
        "host.io:5000",
        &["host.io:5000/x", "host.io:05000/x", "host.io:0005000/x"],
    );
    no(
        "host.io:5000",
        &["host.io/x", "host.io:50000/x", "host.io:500/x"],
    );
    yes("host.io:05000", &["host.io:5000/x"]);
    // 443 is the port every runtime uses when none is given
    yes(
        "evil.example",
        &["evil.example:443/x", "evil.example:0443/x"],
    );
    yes("evil.example:443", &["evil.example/x"]);
    no(
        "evil.example",
        &["evil.example:80/x", "evil.example:4430/x"],
    );
    yes("host.io:0", &["host.io:000/x"]);
}

#[test]
fn rule3_ipv6_hosts_compare_as_addresses() {
    yes(
        "[::1]:5000",
        &[
            "[::1]:5000/x",
            "[0:0::1]:5000/x",
            "[0:0:0:0:0:0:0:1]:5000/x",
            "[::0001]:05000/x",
        ],
    );
    no("[::1]:5000", &["[::2]:5000/x", "[::1]/x", "[::1]:5001/x"]);
    yes("[FC00::1]", &["[fc00::1]/repo", "[fc00:0::1]/repo"]);
    // `*` is a DNS label, never an IPv6 literal
    no("*.*", &["[::1]/x"]);
    no("*:5000", &["[::1]:5000/x"]);
}

#[test]
fn rule4_path_components() {
    let p = "ghcr.io/mycorp";
    yes(
        p,
        &[
            "ghcr.io/mycorp",
            "ghcr.io/mycorp/app",
            "ghcr.io/mycorp/app/x:1",
        ],
    );
    no(
        p,
        &[
            "ghcr.io/mycorpevil",
            "ghcr.io/mycorp-evil/app",
            "ghcr.io/my/corp",
            "ghcr.io/app",
        ],
    );
    yes("ghcr.io/*/app", &["ghcr.io/a/app", "ghcr.io/b/app/x"]);
    no(
        "ghcr.io/*/app",
        &["ghcr.io/app", "ghcr.io/a/b/app", "ghcr.io/a/apps"],
    );
    yes(
        "ghcr.io/mycorp/**",
        &["ghcr.io/mycorp", "ghcr.io/mycorp/a/b/c"],
    );
    no("ghcr.io/mycorp/**", &["ghcr.io/mycorpx/a"]);
    yes("ghcr.io/*", &["ghcr.io/a", "ghcr.io/a/b"]);
    yes("bitnami/*", &["bitnami/redis", "bitnami/redis/x"]);
    no("bitnami/*", &["bitnami"]);
}

#[test]
fn rule5_no_match_across_the_domain_path_boundary() {
    no("ghcr.io/mycorp", &["ghcr.io.mycorp/x", "mycorp.ghcr.io/x"]);
    no("ghcr", &["ghcr/io"]);
    no("io", &["ghcr.io/x"]);
    // a Hub path equal to a domain's text is still a path
    no("docker.io/library/ghcr.io", &["ghcr.io/x"]);
    no("*.com", &["docker.io/library/x.com", "x.com"]);
    yes("*.io", &["ghcr.io/x", "nginx"]);
}

#[test]
fn docker_hub_aliases_cannot_dodge() {
    for image in [
        "registry-1.docker.io/library/nginx",
        "registry-1.docker.io/nginx",
        "REGISTRY-1.DOCKER.IO/library/nginx",
        "index.docker.io/nginx",
        "INDEX.DOCKER.IO/nginx",
        "Index.Docker.Io/library/nginx",
        "DOCKER.IO/nginx",
        "docker.io:443/library/nginx",
        "registry-1.docker.io:443/nginx",
        "registry.hub.docker.com/library/nginx",
        "registry.hub.docker.com/nginx",
        "Registry.Hub.Docker.Com:443/library/nginx",
    ] {
        assert_eq!(find(&["docker.io"], image), Some(0), "docker.io vs {image}");
        assert_eq!(find(&["nginx"], image), Some(0), "nginx vs {image}");
        assert_eq!(
            find(&["docker.io/library"], image),
            Some(0),
            "docker.io/library vs {image}"
        );
        assert_eq!(find(&["ghcr.io"], image), None, "ghcr.io vs {image}");
    }
    yes("registry-1.docker.io", &["nginx", "bitnami/redis"]);
    // A pattern naming one of the aliases literally still reaches them.
    yes(
        "*.docker.io",
        &["registry-1.docker.io/x/y", "INDEX.DOCKER.IO/x"],
    );
    no("*.docker.io", &["nginx", "docker.io/x/y"]);
    // Another port is another server.
    no(
        "docker.io",
        &["docker.io:5000/x", "registry-1.docker.io:5000/x"],
    );
}

/// Every Docker Hub host spelling (case, `:443`) in front of every kind of
/// Hub path, against every pattern form that names Docker Hub: the image
/// matches exactly when its canonical `docker.io/...` spelling does.
#[test]
fn every_docker_hub_spelling_matches_like_docker_io_for_every_pattern_form() {
    let hosts = [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "registry.hub.docker.com",
    ];
    let spellings = |host: &str| {
        [
            host.to_owned(),
            host.to_ascii_uppercase(),
            format!("{host}:443"),
            format!("{}:443", host.to_ascii_uppercase()),
        ]
    };
    // (path as written after the host, canonical path)
    let paths = [
        ("library/nginx", "library/nginx"),
        ("bitnami/redis", "bitnami/redis"),
        ("bitnami/redis/sub", "bitnami/redis/sub"),
    ];
    let mut patterns: Vec<String> = [
        "nginx",
        "library/nginx",
        "bitnami",
        "bitnami/redis",
        "bitnami/*",
        "bitnami/**",
        "library/*",
        "ghcr.io",
        "*.docker.io",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for host in hosts {
        for suffix in [
            "",
            "/**",
            "/library",
            "/library/nginx",
            "/bitnami",
            "/*/redis",
            "/*",
        ] {
            patterns.push(format!("{host}{suffix}"));
            patterns.push(format!("{}{suffix}", host.to_ascii_uppercase()));
        }
    }
    let mut checked = 0;
    for pattern in &patterns {
        for (written, canonical) in paths {
            let want = find(&[pattern.as_str()], &format!("docker.io/{canonical}:1"));
            for host in hosts {
                for spelled in spellings(host) {
                    let image = format!("{spelled}/{written}:1");
                    let got = find(&[pattern.as_str()], &image);
                    // `*.docker.io` names some of the aliases literally and is
                    // allowed to match them (never less than docker.io does).
                    if pattern.eq_ignore_ascii_case("*.docker.io") {
                        assert!(got.is_some() || want.is_none(), "{pattern} vs {image}");
                    } else {
                        assert_eq!(got, want, "pattern {pattern:?} vs image {image:?}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1000);
    // Sanity: the property is not vacuous.
    assert_eq!(find(&["registry.hub.docker.com"], "nginx:1"), Some(0));
    assert_eq!(
        find(&["docker.io"], "registry.hub.docker.com/x/y:1"),
        Some(0)
    );
}

#[test]
fn first_pattern_in_order_is_reported() {
    let patterns = ["ghcr.io/a/b", "ghcr.io", "ghcr.io/a", "*.io"];
    assert_eq!(find(&patterns, "ghcr.io/a/b/c"), Some(0));
    assert_eq!(find(&patterns, "ghcr.io/a/x"), Some(1));
    assert_eq!(find(&patterns, "quay.io/a/x"), Some(3));
    assert_eq!(find(&["nginx", "nginx"], "nginx"), Some(0));
}

#[test]
fn empty_domain_quirk_and_bad_ipv6_match_nothing() {
    // `my_registry.com/foo` parses with an empty domain: no pattern, not
    // even one spelling the whole thing, may match it.
    for p in [
        "docker.io",
        "*.*",
        "my-registry.com",
        "*.com",
        "docker.io/my_registry.com",
    ] {
        assert_eq!(find(&[p], "my_registry.com/foo"), None, "{p}");
    }
    assert_eq!(find(&["*:5000"], "[1:2]:5000/x"), None);
}

#[test]
fn unicode_and_control_characters_never_parse_as_images() {
    // The reference grammar is ASCII: look-alikes cannot reach a matcher.
    for image in [
        "mycorp.registry.iо/app",  // Cyrillic o
        "ｍycorp.registry.io/app", // fullwidth m
        "mycorp.registry.io/app\u{0}",
        "mycorp.registry.io/app\n",
        " mycorp.registry.io/app",
        "mycorp.registry.io /app",
        "",
    ] {
        assert!(Reference::parse(image).is_err(), "{image:?}");
    }
}

#[test]
fn pattern_errors() {
    let mut b = PatternSetBuilder::new();
    for bad in [
        "",
        "nginx:latest",
        "ghcr.io/x@sha256:00",
        "ghcr.io//x",
        "ghcr.io/X",
        "ghcr.io/**/x",
        "ghcr .io",
        "gсr.io",
        "ｇhcr.io",
        "ghcr.io/x\u{7}",
        "[::1",
        "host:abc/x",
        "*.*.io/a*",
    ] {
        assert!(b.add(bad).is_err(), "{bad:?} should be rejected");
    }
    assert!(b.is_empty());
}

#[test]
fn many_patterns_same_answer() {
    let mut patterns = Vec::new();
    for i in 0..500 {
        patterns.push(format!("r{i}.example.com/team{}", i % 7));
    }
    patterns.push("*.example.com/team3/app".into());
    let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
    assert_eq!(find(&refs, "r42.example.com/team0/x"), Some(42));
    assert_eq!(find(&refs, "r42.example.com/team1/x"), None);
    assert_eq!(find(&refs, "zz.example.com/team3/app/x"), Some(500));
    assert_eq!(find(&refs, "R17.EXAMPLE.COM/team3/app"), Some(17));
}

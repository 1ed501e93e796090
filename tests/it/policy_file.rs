//! The policy file: every mistake is reported with its line and column,
//! semantic errors are all collected, and the shipped examples load.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use imagegate::policy::{BUILTIN_POLICY, CompileErrorKind, CompileErrors};

fn errors(text: &str) -> CompileErrors {
    match imagegate::load::compile(text) {
        Ok(_) => panic!("policy should be rejected:\n{text}"),
        Err(e) => e,
    }
}

/// (line, column, kind, message) of the only error.
fn one(text: &str) -> (u32, u32, CompileErrorKind, String) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs}");
    let e = errs.iter().next().unwrap();
    (e.line, e.column, e.kind, e.message.clone())
}

const HEAD: &str = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\n";

#[test]
fn examples_load() {
    let builtin = std::fs::read_to_string("examples/policy.yaml").unwrap();
    assert_eq!(builtin, BUILTIN_POLICY);
    let s = imagegate::load::compile(&builtin).unwrap();
    assert_eq!(s.name(), Some("builtin-default"));
    let annotated = std::fs::read_to_string("examples/policy-annotated.yaml").unwrap();
    let s = imagegate::load::compile(&annotated).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.name(), Some("mycorp-images"));
}

#[test]
fn typo_in_a_field_name() {
    let text = format!("{HEAD}spec:\n  tags:\n    requireDigst: true\n");
    let (line, column, kind, message) = one(&text);
    assert_eq!((line, column, kind), (5, 5, CompileErrorKind::Syntax));
    assert!(
        message.contains("unknown field `requireDigst`"),
        "{message}"
    );
    assert!(
        message.contains("requireDigest"),
        "lists the valid fields: {message}"
    );
    let errs = errors(&text);
    assert!(
        errs.to_string()
            .starts_with("line 5, column 5: unknown field"),
        "{errs}"
    );
}

#[test]
fn unknown_fields_everywhere() {
    for (yaml, line) in [
        ("spec:\n  registry:\n    allow: [x]\n", 4),
        ("spec:\n  registries:\n    alow: [x]\n", 5),
        ("spec:\n  exemptions:\n    namespace: [x]\n", 5),
        (
            "spec:\n  overrides:\n    - namespaces: [a]\n      tag: {}\n",
            6,
        ),
        ("spec:\n  breakGlass:\n    enable: true\n", 5),
        ("metadata:\n  namespace: x\n", 4),
        ("status: {}\n", 3),
    ] {
        let (l, _, kind, message) = one(&format!("{HEAD}{yaml}"));
        assert_eq!(
            (l, kind),
            (line, CompileErrorKind::Syntax),
            "{yaml}: {message}"
        );
        assert!(message.contains("unknown field"), "{yaml}: {message}");
    }
}

#[test]
fn wrong_types() {
    let (l, c, _, m) = one(&format!("{HEAD}spec:\n  tags:\n    requireDigest: maybe\n"));
    assert_eq!((l, c), (5, 20), "{m}");
    let (l, c, _, m) = one(&format!("{HEAD}spec:\n  tags:\n    forbid: latest\n"));
    assert_eq!((l, c), (5, 13), "{m}");
    // YAML 1.1 booleans are not booleans here
    let (l, _, _, m) = one(&format!("{HEAD}spec:\n  tags:\n    semver: yes\n"));
    assert_eq!(l, 5, "{m}");
}

#[test]
fn bad_values_are_located() {
    let text = format!(
        "{HEAD}spec:\n  mode: enforcing\n  registries:\n    allow:\n      - ghcr.io/ok\n      - \"nginx:latest\"\n      - ghcr.io/Bad\n    deny: [\"ghcr.io//x\", quay.io]\n  tags:\n    forbid: [latest, \".bad\"]\n  exemptions:\n    namespaces: [kube-system, Kube, \"*\"]\n"
    );
    let errs = errors(&text);
    let got: Vec<(u32, u32, CompileErrorKind)> =
        errs.iter().map(|e| (e.line, e.column, e.kind)).collect();
    assert_eq!(
        got,
        [
            (4, 9, CompileErrorKind::Value),
            (8, 9, CompileErrorKind::Pattern),
            (9, 9, CompileErrorKind::Pattern),
            (10, 12, CompileErrorKind::Pattern),
            (12, 22, CompileErrorKind::Value),
            (14, 31, CompileErrorKind::Namespace),
            (14, 37, CompileErrorKind::Namespace),
        ],
        "{errs}"
    );
    let text = errs.to_string();
    for want in [
        "line 4, column 9: spec.mode: unknown mode \"enforcing\"",
        "line 8, column 9: spec.registries.allow[1]: invalid port \"latest\"",
        "line 9, column 9: spec.registries.allow[2]: path component \"Bad\"",
        "line 10, column 12: spec.registries.deny[0]: empty path component",
        "line 12, column 22: spec.tags.forbid[1]: \".bad\" is not a valid tag",
        "line 14, column 31: spec.exemptions.namespaces[1]: invalid namespace \"Kube\"",
        "line 14, column 37: spec.exemptions.namespaces[2]:",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn header_is_checked() {
    let errs = errors("apiVersion: imagegate.dev/v1\nkind: Policy\n");
    let got: Vec<(u32, u32)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(got, [(1, 13), (2, 7)], "{errs}");
    assert!(errs.iter().all(|e| e.kind == CompileErrorKind::Header));
    let (l, c, _, m) = one("kind: ImagePolicy\n");
    assert_eq!((l, c), (1, 1));
    assert!(m.contains("apiVersion"), "{m}");
    let (_, _, _, m) = one("");
    assert!(m.contains("empty"), "{m}");
    let (_, _, _, m) = one("# only a comment\n");
    assert!(m.contains("empty"), "{m}");
    let (l, _, _, m) = one(&format!("{HEAD}---\n{HEAD}"));
    assert_eq!(l, 3, "{m}");
    let (_, _, kind, _) = one("just text");
    assert_eq!(kind, CompileErrorKind::Syntax);
    let (_, _, kind, _) = one("[1, 2");
    assert_eq!(kind, CompileErrorKind::Syntax);
}

#[test]
fn supply_chain_fields_compile() {
    let key = "tests/fixtures/verify/keys/cosign.pub";
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [\"127.0.0.1:5000/**\"]\n      keys:\n        - file: {key}\n      require:\n        signature: true\n        sbom: [cyclonedx, spdx]\n        vulnerabilities:\n          maxCvss: 7.0\n          maxAge: 168h\n  registries:\n    insecure: [\"127.0.0.1:5000\"]\n  verification:\n    timeout: 4s\n    onError: allow\n    cache:\n      allowTtl: 10m\n      denyTtl: 30s\n      tagTtl: 5s\n      maxEntries: 1000\n  mutate:\n    pinDigests: true\n"
    );
    let s = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}"));
    let sc = s.supply_chain();
    assert_eq!(sc.rules().len(), 1);
    let req = sc.rules()[0].requirement();
    assert!(req.signature());
    assert_eq!(req.sbom().len(), 2);
    assert_eq!(req.vulnerabilities().map(|v| v.max_cvss), Some(7.0));
    assert_eq!(sc.timeout(), std::time::Duration::from_secs(4));
    assert_eq!(sc.on_error(), imagegate::policy::OnError::Allow);
    assert!(sc.pin_digests());
    assert!(sc.applies_to("127.0.0.1:5000/app:v1"));
    assert!(!sc.applies_to("127.0.0.1:5001/app:v1"));
    assert!(!sc.applies_to("nginx:1.25"));
    assert_eq!(sc.insecure(), ["127.0.0.1:5000"]);
    assert_eq!(sc.cache().tag_ttl, std::time::Duration::from_secs(5));
    assert_eq!(sc.cache().max_entries, 1000);
    // a rule without `require` asks for the signature
    let pem = std::fs::read_to_string(key)
        .unwrap()
        .replace('\n', "\n            ");
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [ghcr.io/mycorp]\n      keys:\n        - pem: |\n            {pem}\n"
    );
    let s = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(s.supply_chain().rules()[0].requirement().signature());
    assert!(!s.supply_chain().pin_digests());
}

#[test]
fn supply_chain_mistakes_are_located() {
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [\"a b\"]\n      keys:\n        - file: /nonexistent/key.pub\n        - pem: not a key\n        - {{}}\n      require:\n        sbom: [cyclonedx, swid]\n        vulnerabilities:\n          maxCvss: 11\n          maxAge: 7 fortnights\n    - images: []\n      keys: []\n  registries:\n    insecure: [\"http://x/y\"]\n    auth: /nonexistent/config.json\n  verification:\n    timeout: 90s\n    onError: maybe\n    cache:\n      denyTtl: soon\n      maxEntries: 0\n"
    );
    let errs = errors(&text);
    let got: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(
        got,
        [5, 7, 8, 9, 11, 13, 14, 15, 16, 18, 19, 21, 22, 24, 25],
        "{errs}"
    );
    let all = errs.to_string();
    for needle in [
        "spec.verify[0].images[0]",
        "spec.verify[0].keys[0].file: cannot read \"/nonexistent/key.pub\"",
        "spec.verify[0].keys[1].pem: not a cosign public key",
        "spec.verify[0].keys[2]: a key needs file or pem",
        "unknown SBOM kind \"swid\"",
        "maxCvss: 11 is not a CVSS score",
        "maxAge: invalid duration \"7 fortnights\"",
        "spec.verify[1].images is empty",
        "spec.verify[1].keys is empty",
        "spec.registries.insecure[0]",
        "spec.registries.auth: cannot read",
        "spec.verification.timeout: \"90s\" must be above 0",
        "spec.verification.onError: unknown value \"maybe\"",
        "spec.verification.cache.denyTtl: invalid duration \"soon\"",
        "spec.verification.cache.maxEntries: 0 must be at least 1",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    // a key file that is not a public key (a private one)
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [x]\n      keys:\n        - file: tests/fixtures/verify/keys/cosign.pkcs8.pem\n"
    );
    let (l, _, kind, m) = one(&text);
    assert_eq!((l, kind), (7, CompileErrorKind::Value), "{m}");
    assert!(m.contains("not a cosign public key"), "{m}");
    // registry access is global
    let text = format!(
        "{HEAD}spec:\n  overrides:\n    - namespaces: [a]\n      registries:\n        insecure: [\"x:1\"]\n"
    );
    let (l, _, _, m) = one(&text);
    assert_eq!(l, 7, "{m}");
    assert!(m.contains("only allowed in spec.registries"), "{m}");
    // a require that asks for nothing
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [x]\n      keys: [{{file: tests/fixtures/verify/keys/cosign.pub}}]\n      require:\n        signature: false\n"
    );
    let (_, _, _, m) = one(&text);
    assert!(m.contains("asks for nothing"), "{m}");
}

#[test]
fn overrides_and_break_glass_are_checked() {
    let text = format!(
        "{HEAD}spec:\n  overrides:\n    - namespaces: []\n    - namespaces: [\"prod-*\"]\n      mode: strict\n      registries:\n        deny: [\"a b\"]\n  breakGlass:\n    enabled: true\n    annotation: break-glass.example.com/reason\n    namespaces: []\n"
    );
    let errs = errors(&text);
    let got: Vec<(u32, CompileErrorKind)> = errs.iter().map(|e| (e.line, e.kind)).collect();
    assert_eq!(
        got,
        [
            (5, CompileErrorKind::Namespace),
            (7, CompileErrorKind::Value),
            (9, CompileErrorKind::Pattern),
            (12, CompileErrorKind::Value),
            (13, CompileErrorKind::Namespace),
        ],
        "{errs}"
    );
    assert!(errs.to_string().contains("image-policy.k8s.io"), "{errs}");
    // namespaces is required in an override
    let (l, _, _, m) = one(&format!("{HEAD}spec:\n  overrides:\n    - mode: audit\n"));
    assert_eq!(l, 5, "{m}");
    assert!(m.contains("namespaces"), "{m}");
}

#[test]
fn metadata_is_tolerant_of_labels_and_annotations() {
    let text = format!("{HEAD}metadata:\n  name: x\n  labels: {{a: b}}\n  annotations: {{c: d}}\n");
    assert!(imagegate::load::compile(&text).is_ok());
    assert!(
        imagegate::load::compile(HEAD).is_ok(),
        "spec may be omitted"
    );
    assert!(
        imagegate::load::compile(&format!("{HEAD}spec:\n")).is_ok(),
        "spec may be empty"
    );
}

#[test]
fn hostile_files_hit_the_budget_not_the_memory() {
    // An alias bomb (10^12 nodes if expanded) is refused quickly; every
    // field is typed, so the first alias already fails to fit.
    let mut bomb = format!("{HEAD}spec:\n  verify:\n    - &b0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let p = format!("*b{}", i - 1);
        let items = [p.as_str(); 10].join(", ");
        bomb.push_str(&format!("    - &b{i} [{items}]\n"));
    }
    let started = std::time::Instant::now();
    let (_, _, kind, m) = one(&bomb);
    assert_eq!(kind, CompileErrorKind::Syntax, "{m}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Where aliases do fit (strings in a list), the parser's alias budget
    // stops them.
    let many = ["*a"; 5_000].join(", ");
    let aliases = format!("{HEAD}spec:\n  registries:\n    allow: [&a x, {many}]\n");
    let started = std::time::Instant::now();
    let (_, _, kind, m) = one(&aliases);
    assert_eq!(kind, CompileErrorKind::Syntax, "{m}");
    assert!(
        m.contains("limit") || m.contains("budget") || m.contains("alias"),
        "{m}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // deep nesting
    let deep = format!(
        "{HEAD}spec:\n  verify: {}{}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (_, _, kind, m) = one(&deep);
    assert_eq!(kind, CompileErrorKind::Syntax, "{m}");
    // too large
    let big = format!(
        "{HEAD}# {}\n",
        "x".repeat(imagegate::policy::MAX_POLICY_BYTES)
    );
    let (_, _, _, m) = one(&big);
    assert!(m.contains("larger than"), "{m}");
}

#[test]
fn all_semantic_errors_are_collected_in_file_order() {
    let mut text = format!("{HEAD}spec:\n  registries:\n    deny:\n");
    for i in 0..50 {
        text.push_str(&format!("      - \"bad pattern {i}\"\n"));
    }
    let errs = errors(&text);
    assert_eq!(errs.len(), 50);
    let lines: Vec<u32> = errs.iter().map(|e| e.line).collect();
    assert_eq!(lines, (6..56).collect::<Vec<u32>>());
}

#[test]
fn registry_ca_bundle() {
    let policy = |ca: &str| format!("{HEAD}spec:\n  registries:\n    ca: {ca}\n");
    let s = imagegate::load::compile(&policy("tests/fixtures/tls/ca.pem"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.supply_chain().ca().len(), 1);
    let none = imagegate::load::compile(&format!("{HEAD}spec: {{}}\n")).unwrap();
    assert!(none.supply_chain().ca().is_empty());
    // a changed CA is a new verifier (no cache reuse across it)
    let other = imagegate::load::compile(&policy("tests/fixtures/tls/other-ca.pem")).unwrap();
    assert!(!s.supply_chain().same_verifier(other.supply_chain()));
    let again = imagegate::load::compile(&policy("tests/fixtures/tls/ca.pem")).unwrap();
    assert!(s.supply_chain().same_verifier(again.supply_chain()));
    // located errors: missing, not PEM, a key instead of a certificate, too large
    let (l, _, kind, m) = one(&policy("/nonexistent/ca.pem"));
    assert_eq!((l, kind), (5, CompileErrorKind::Value), "{m}");
    assert!(
        m.contains("spec.registries.ca: cannot read \"/nonexistent/ca.pem\""),
        "{m}"
    );
    let (l, _, _, m) = one(&policy("tests/fixtures/tls/server.key"));
    assert_eq!(l, 5, "{m}");
    assert!(
        m.contains("spec.registries.ca:") && m.contains("holds no PEM certificate"),
        "{m}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (_, _, _, m) = one(&policy(&bad.display().to_string()));
    assert!(m.contains("not a usable CA certificate"), "{m}");
    let big = dir.path().join("big.pem");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let (_, _, _, m) = one(&policy(&big.display().to_string()));
    assert!(m.contains("larger than 1024 KiB"), "{m}");
    // registry access is global
    let text = format!(
        "{HEAD}spec:\n  overrides:\n    - namespaces: [a]\n      registries:\n        ca: tests/fixtures/tls/ca.pem\n"
    );
    let (l, _, _, m) = one(&text);
    assert_eq!(l, 7, "{m}");
    assert!(
        m.contains("overrides[0].registries.ca: only allowed in spec.registries"),
        "{m}"
    );
}

#[test]
fn keyless_rules_compile_and_their_mistakes_are_located() {
    let root = "tests/fixtures/verify/keyless/trusted_root.json";
    let key = "tests/fixtures/verify/keys/cosign.pub";
    // identities with and without expressions and claims, a root file, keys
    // beside identities; a rule without trustedRoot uses the embedded root
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [\"ghcr.io/mycorp/**\"]\n      keys:\n        - file: {key}\n      keyless:\n        - issuer: https://token.actions.githubusercontent.com\n          subject: https://github.com/mycorp/app/.github/workflows/release.yml@refs/heads/main\n        - issuerRegExp: 'https://token\\.actions\\.githubusercontent\\.com'\n          subjectRegExp: 'https://github\\.com/mycorp/[^/]+/\\.github/workflows/release\\.yml@refs/tags/v.*'\n          claims:\n            sourceRepositoryOwnerURI: https://github.com/mycorp\n            runnerEnvironment: github-hosted\n      trustedRoot: {root}\n    - images: [\"registry.k8s.io/**\"]\n      keyless:\n        - issuer: https://accounts.google.com\n          subject: krel-trust@k8s-releng-prod.iam.gserviceaccount.com\n"
    );
    let s = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let rules = s.supply_chain().rules();
    let first = rules[0].requirement();
    assert_eq!(first.keys().keys().len(), 1);
    let keyless = first.keyless().expect("keyless");
    assert_eq!(keyless.identities().len(), 2);
    assert!(!keyless.root().is_embedded());
    let second = rules[1].requirement().keyless().expect("keyless");
    assert!(second.root().is_embedded());
    assert!(rules[1].requirement().signature());
    assert_ne!(first.fingerprint(), rules[1].requirement().fingerprint());
    // the same rule with another identity is another requirement (cached apart)
    let other =
        imagegate::load::compile(&text.replace("refs/heads/main", "refs/heads/dev")).unwrap();
    assert_ne!(
        other.supply_chain().rules()[0].requirement().fingerprint(),
        first.fingerprint()
    );

    // mistakes, each at its line
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken_root.json");
    std::fs::write(&broken, "{\n  \"mediaType\": \"application/vnd.dev.sigstore.trustedroot+json;version=0.1\",\n  \"tlogs\": [,]\n}\n").unwrap();
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [a.example]\n      keyless:\n        - issuer: https://x.example\n          subjectRegExp: 'https://github\\.com/(mycorp'\n        - issuer: https://x.example\n          issuerRegExp: 'https://x\\.example'\n          subject: s\n        - subject: s\n        - issuer: i\n          subject: s\n          claims:\n            sourceRepository: x\n            runnerEnvironment: ''\n      trustedRoot: {}\n    - images: [b.example]\n      keyless: []\n      trustedRoot: /nonexistent/trusted_root.json\n    - images: [c.example]\n      trustedRoot: {root}\n    - images: [d.example]\n      keyless:\n        - issuer: i\n          subjectRegExp: ''\n",
        broken.display()
    );
    let errs = errors(&text);
    let got: Vec<(u32, u32)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        got,
        [
            (8, 26),
            (9, 19),
            (12, 11),
            (16, 31),
            (17, 32),
            (18, 20),
            (20, 16),
            (21, 20),
            (22, 15),
            (23, 20),
            (27, 26)
        ],
        "{errs}"
    );
    let all = errs.to_string();
    for needle in [
        "spec.verify[0].keyless[0].subjectRegExp: invalid regular expression \"https://github\\\\.com/(mycorp\"",
        "spec.verify[0].keyless[1].issuer: give spec.verify[0].keyless[1].issuer or spec.verify[0].keyless[1].issuerRegExp, not both",
        "spec.verify[0].keyless[2].issuer: give spec.verify[0].keyless[2].issuer (exact)",
        "spec.verify[0].keyless[3].claims: unknown claim \"sourceRepository\": expected one of buildSignerURI",
        "spec.verify[0].keyless[3].claims.runnerEnvironment is empty",
        "line 3 column 13: not a usable Sigstore trusted root",
        "spec.verify[1].keyless is empty",
        "spec.verify[1].trustedRoot: cannot read",
        "spec.verify[2].trustedRoot: the root is for keyless identities",
        "spec.verify[3].keyless[0].subjectRegExp is empty",
        "spec.verify[2]: list keys (cosign public keys), keyless (signer identities), or both",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
}

#[test]
fn tuf_sources_compile_and_their_mistakes_are_located() {
    let tuf_root = "tests/fixtures/tuf/root.json";
    let identity = "      keyless:\n        - issuer: https://token.actions.githubusercontent.com\n          subject: https://github.com/mycorp/app/.github/workflows/release.yml@refs/heads/main\n";
    // two rules naming the same repository are one source, refreshed at
    // the shorter interval; the rule starts on the embedded root (no
    // refresh has happened in a compile from disk)
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [\"ghcr.io/mycorp/**\"]\n{identity}      tuf:\n        url: https://tuf-repo-cdn.sigstore.dev\n        root: {tuf_root}\n    - images: [\"ghcr.io/other/**\"]\n{identity}      tuf:\n        url: https://tuf-repo-cdn.sigstore.dev/\n        root: {tuf_root}\n        target: trusted_root.json\n        refresh: 6h\n"
    );
    let s = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(s.tuf_sources().len(), 1, "{:?}", s.tuf_sources());
    let source = &s.tuf_sources()[0];
    assert_eq!(source.url(), "https://tuf-repo-cdn.sigstore.dev");
    assert_eq!(source.target(), "trusted_root.json");
    assert_eq!(source.refresh(), std::time::Duration::from_secs(6 * 3600));
    let rule = s.supply_chain().rules()[0].requirement();
    assert!(rule.keyless().unwrap().root().is_embedded());
    assert!(
        s.files().iter().any(|f| f.ends_with("tuf/root.json")),
        "the TUF root file is watched: {:?}",
        s.files()
    );
    // the public-good repository needs no root file: its root is built in
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [\"ghcr.io/mycorp/**\"]\n{identity}      tuf:\n        url: https://tuf-repo-cdn.sigstore.dev/\n"
    );
    let s = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        s.tuf_sources()[0].root(),
        imagegate::policy::SIGSTORE_TUF_ROOT.as_bytes()
    );
    assert!(s.files().is_empty(), "{:?}", s.files());

    // mistakes, each at its line
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [a.example]\n{identity}      tuf:\n        url: ftp://tuf.example\n        root: /nonexistent/root.json\n        target: ../x\n        refresh: 10ms\n    - images: [b.example]\n{identity}      tuf:\n        root: tests/fixtures/tuf/root.bad-signature.json\n    - images: [c.example]\n{identity}      tuf:\n        url: https://tuf.example\n        root: tests/fixtures/verify/keyless/trusted_root.json\n        refresh: soon\n    - images: [d.example]\n      keys:\n        - file: tests/fixtures/verify/keys/cosign.pub\n      tuf:\n        url: https://tuf.example\n        root: {tuf_root}\n    - images: [e.example]\n{identity}      tuf:\n        url: https://tuf.example\n"
    );
    let errs = errors(&text);
    let got: Vec<(u32, u32)> = errs.iter().map(|e| (e.line, e.column)).collect();
    assert_eq!(
        got,
        [
            (10, 14),
            (11, 15),
            (12, 17),
            (13, 18),
            (19, 9),
            (19, 15),
            (26, 15),
            (27, 18),
            (32, 9),
            (39, 9)
        ],
        "{errs}"
    );
    let all = errs.to_string();
    for needle in [
        "spec.verify[0].tuf.url: the URL must start with https:// or http://",
        "spec.verify[0].tuf.root: cannot read \"/nonexistent/root.json\"",
        "spec.verify[0].tuf.target: \"../x\" is not a target path",
        "spec.verify[0].tuf.refresh: \"10ms\" is out of range: from 1s to 30d",
        "spec.verify[1].tuf.url is missing",
        "spec.verify[1].tuf.root: \"tests/fixtures/tuf/root.bad-signature.json\" is not a usable TUF root: signature threshold not met",
        "spec.verify[2].tuf.root: \"tests/fixtures/verify/keyless/trusted_root.json\" is not a usable TUF root",
        "spec.verify[2].tuf.refresh:",
        "spec.verify[3].tuf: the repository refreshes the root of keyless identities",
        "spec.verify[4].tuf.root is missing",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    // an interval past 30 days is refused too (a repository's new root
    // would go unseen for that long)
    let text = format!(
        "{HEAD}spec:\n  verify:\n    - images: [a.example]\n{identity}      tuf:\n        url: https://tuf-repo-cdn.sigstore.dev\n        refresh: 31d\n"
    );
    let all = errors(&text).to_string();
    assert!(
        all.contains("\"31d\" is out of range: from 1s to 30d"),
        "{all}"
    );
}

//! Decisions: the order of the rules, tag rules, exemptions, overrides,
//! break-glass, audit mode, warnings and explanations.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

use imagegate::policy::{Context, Decision, MatchStrategy, Mode, Reason, Snapshot};

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn policy(spec: &str) -> Snapshot {
    let text = format!("apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n{spec}");
    let trie = imagegate::load::compile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Every case also runs on the linear scan and must agree.
    let linear = Snapshot::from_yaml_with(&text, MatchStrategy::LinearScan).unwrap();
    LINEAR.with(|l| *l.borrow_mut() = Some(linear));
    trie
}

thread_local! {
    static LINEAR: std::cell::RefCell<Option<Snapshot>> = const { std::cell::RefCell::new(None) };
}

fn decide<'s>(
    s: &'s Snapshot,
    ns: &str,
    annotations: &[(&str, &str)],
    image: &str,
) -> Decision<'s> {
    let ctx = Context {
        namespace: ns,
        annotations,
        user: None,
    };
    let d = s.scope(&ctx).evaluate(image);
    LINEAR.with(|l| {
        if let Some(linear) = &*l.borrow() {
            let ld = linear.scope(&ctx).evaluate(image);
            assert_eq!(
                ld.reason(),
                d.reason(),
                "linear scan disagrees on {image:?}"
            );
            assert_eq!(ld.rule(), d.rule(), "linear scan disagrees on {image:?}");
        }
    });
    d
}

fn reason(s: &Snapshot, ns: &str, image: &str) -> Reason {
    decide(s, ns, &[], image).reason()
}

#[test]
fn empty_spec_allows_everything_valid() {
    let s = policy("  {}\n");
    for image in [
        "nginx",
        "nginx:latest",
        "ghcr.io/x/y@".to_owned().as_str(),
        "a.b/c",
    ] {
        let want = if image.ends_with('@') {
            Reason::InvalidReference
        } else {
            Reason::Allowed
        };
        assert_eq!(reason(&s, "default", image), want, "{image}");
    }
}

#[test]
fn invalid_references_are_denied_everywhere() {
    let s =
        policy("  exemptions:\n    namespaces: [kube-system]\n  breakGlass:\n    enabled: true\n");
    let glass = [("break-glass.image-policy.k8s.io/reason", "incident 42")];
    for image in [
        "",
        " nginx",
        "nginx ",
        "Nginx",
        "nginx:latest:extra",
        "my_registry.com/foo", // empty domain quirk
        "[1:2]/x",             // not an IPv6 address
        "nginx\u{0}",
        "ngіnx", // Cyrillic i
        "ｎginx",
        &"a/".repeat(200),
    ] {
        for ns in ["default", "kube-system"] {
            let d = decide(&s, ns, &glass, image);
            assert_eq!(d.reason(), Reason::InvalidReference, "{image:?} in {ns}");
            assert!(!d.allowed(), "{image:?} in {ns}");
        }
    }
}

#[test]
fn rule_order() {
    let s = policy(
        "  registries:\n    allow: [ghcr.io/ok]\n    deny: [ghcr.io/ok/bad]\n  tags:\n    requireTagOrDigest: true\n    forbid: [latest]\n    requireDigest: true\n    semver: true\n  exemptions:\n    namespaces: [kube-system]\n",
    );
    let ns = "default";
    assert_eq!(
        reason(&s, ns, "ghcr.io/ok/bad/x:1.0.0"),
        Reason::RegistryDenied
    );
    assert_eq!(
        reason(&s, ns, "ghcr.io/other:1.0.0"),
        Reason::RegistryNotAllowed
    );
    assert_eq!(reason(&s, ns, "ghcr.io/ok/app"), Reason::TagMissing);
    assert_eq!(
        reason(&s, ns, "ghcr.io/ok/app:latest"),
        Reason::TagForbidden
    );
    assert_eq!(
        reason(&s, ns, "ghcr.io/ok/app:1.0.0"),
        Reason::DigestRequired
    );
    assert_eq!(
        reason(&s, ns, &format!("ghcr.io/ok/app:main@{DIGEST}")),
        Reason::TagNotSemver
    );
    assert_eq!(
        reason(&s, ns, &format!("ghcr.io/ok/app:v1.0.0@{DIGEST}")),
        Reason::Allowed
    );
    assert_eq!(
        reason(&s, ns, &format!("ghcr.io/ok/app@{DIGEST}")),
        Reason::Allowed
    );
    // exemption comes after parsing and before everything else
    assert_eq!(
        reason(&s, "kube-system", "ghcr.io/ok/bad/x"),
        Reason::Exempt
    );
    assert_eq!(reason(&s, "kube-system", "docker.io/evil"), Reason::Exempt);
    assert_eq!(
        reason(&s, "kube-system-x", "docker.io/evil:1.0.0"),
        Reason::RegistryNotAllowed
    );
}

#[test]
fn implicit_latest() {
    // requireTagOrDigest alone
    let s = policy("  tags:\n    requireTagOrDigest: true\n");
    assert_eq!(reason(&s, "d", "nginx"), Reason::TagMissing);
    assert_eq!(reason(&s, "d", "nginx:latest"), Reason::Allowed);
    assert_eq!(reason(&s, "d", &format!("nginx@{DIGEST}")), Reason::Allowed);
    // forbid latest alone also denies the implicit latest
    let s = policy("  tags:\n    forbid: [latest]\n");
    assert_eq!(reason(&s, "d", "nginx"), Reason::TagMissing);
    assert_eq!(
        reason(&s, "d", "docker.io/library/nginx"),
        Reason::TagMissing
    );
    assert_eq!(reason(&s, "d", "nginx:latest"), Reason::TagForbidden);
    assert_eq!(reason(&s, "d", "nginx:1.25"), Reason::Allowed);
    // forbidding something else does not
    let s = policy("  tags:\n    forbid: [dev]\n");
    assert_eq!(reason(&s, "d", "nginx"), Reason::Allowed);
}

#[test]
fn forbidden_tags_compare_case_insensitively() {
    let s = policy("  tags:\n    forbid: [Latest, dev]\n");
    for image in [
        "nginx:latest",
        "nginx:LATEST",
        "nginx:Latest",
        "nginx:DEV",
        "nginx:lAtEsT",
    ] {
        assert_eq!(reason(&s, "d", image), Reason::TagForbidden, "{image}");
    }
    assert_eq!(reason(&s, "d", "nginx:latest2"), Reason::Allowed);
    assert_eq!(reason(&s, "d", "nginx:develop"), Reason::Allowed);
    let d = decide(&s, "d", &[], "nginx:LATEST");
    assert_eq!(d.rule(), Some("Latest"));
}

#[test]
fn forbidden_tag_with_digest_is_a_warning() {
    let s = Snapshot::builtin();
    let image = format!("nginx:latest@{DIGEST}");
    let d = decide(&s, "d", &[], &image);
    assert_eq!(d.reason(), Reason::Allowed);
    assert!(d.allowed());
    let w = d.warning().expect("a warning");
    assert!(w.to_string().contains("pinned by digest"), "{w}");
    let text = d.explain(&image).to_string();
    assert!(text.contains("\"latest\" is forbidden"), "{text}");
    assert!(decide(&s, "d", &[], "nginx:1.25").warning().is_none());
}

#[test]
fn semver() {
    let s = policy("  tags:\n    semver: true\n");
    for ok in ["x:1.2.3", "x:v1.2.3", "x:1.2.3-rc.1", "x:1.2.3_build.7"] {
        assert_eq!(reason(&s, "d", ok), Reason::Allowed, "{ok}");
    }
    for bad in [
        "x",
        "x:latest",
        "x:1.2",
        "x:01.2.3",
        "x:V1.2.3",
        "x:1.2.3.4",
    ] {
        assert_eq!(reason(&s, "d", bad), Reason::TagNotSemver, "{bad}");
    }
    assert_eq!(reason(&s, "d", &format!("x@{DIGEST}")), Reason::Allowed);
}

#[test]
fn builtin_policy() {
    let s = Snapshot::builtin();
    assert_eq!(s.mode(), Mode::Enforce);
    assert_eq!(s.generation(), 0);
    assert_eq!(s.with_generation(7).generation(), 7);
    let s = Snapshot::builtin();
    assert_eq!(reason(&s, "kube-system", "nginx"), Reason::TagMissing);
    assert_eq!(reason(&s, "d", "nginx:latest"), Reason::TagForbidden);
    assert_eq!(reason(&s, "d", "nginx:Latest"), Reason::TagForbidden);
    assert_eq!(
        reason(&s, "d", "anything.example.com/x/y:1"),
        Reason::Allowed
    );
}

#[test]
fn overrides_first_match_wins() {
    let s = policy(
        "  registries:\n    allow: [ghcr.io/mycorp]\n  tags:\n    forbid: [latest]\n  overrides:\n    - namespaces: [\"prod-*\", payments]\n      tags:\n        requireDigest: true\n    - namespaces: [\"prod-eu\"]\n      mode: audit\n    - namespaces: [\"sandbox-*\"]\n      mode: audit\n      registries:\n        allow: []\n        deny: [docker.io]\n      tags:\n        forbid: []\n",
    );
    let app = "ghcr.io/mycorp/app:1.0";
    assert_eq!(reason(&s, "default", app), Reason::Allowed);
    assert_eq!(reason(&s, "prod-us", app), Reason::DigestRequired);
    assert_eq!(reason(&s, "payments", app), Reason::DigestRequired);
    assert_eq!(reason(&s, "payments-x", app), Reason::Allowed);
    // prod-eu matches the first override, not the second
    let d = decide(&s, "prod-eu", &[], app);
    assert_eq!(
        (d.reason(), d.mode(), d.allowed()),
        (Reason::DigestRequired, Mode::Enforce, false)
    );
    // fields not given keep the base: allow list and forbid still apply in prod
    assert_eq!(
        reason(&s, "prod-us", &format!("ghcr.io/other@{DIGEST}")),
        Reason::RegistryNotAllowed
    );
    assert_eq!(
        reason(&s, "prod-us", "ghcr.io/mycorp/app"),
        Reason::TagMissing
    );
    // sandbox: allow list cleared, deny replaced, forbid cleared, audit
    let d = decide(&s, "sandbox-1", &[], "quay.io/x:latest");
    assert_eq!((d.reason(), d.mode()), (Reason::Allowed, Mode::Audit));
    let d = decide(&s, "sandbox-1", &[], "nginx:1");
    assert_eq!(d.reason(), Reason::RegistryDenied);
    assert!(!d.verdict_allowed());
    assert!(d.allowed(), "audit mode admits");
    assert_eq!(
        s.scope(&Context {
            namespace: "sandbox-1",
            annotations: &[],
            user: None,
        })
        .mode(),
        Mode::Audit
    );
    assert_eq!(s.mode(), Mode::Enforce);
}

#[test]
fn exemption_globs_and_exact_names() {
    let s = policy(
        "  registries:\n    allow: [ghcr.io]\n  exemptions:\n    namespaces: [kube-system, \"team-*\"]\n",
    );
    assert_eq!(reason(&s, "kube-system", "nginx:1"), Reason::Exempt);
    assert_eq!(reason(&s, "team-a", "nginx:1"), Reason::Exempt);
    for ns in [
        "kube-system-x",
        "kube-syste",
        "team",
        "xteam-a",
        "",
        "KUBE-SYSTEM",
    ] {
        assert_eq!(
            reason(&s, ns, "nginx:1"),
            Reason::RegistryNotAllowed,
            "{ns:?}"
        );
    }
    let d = decide(&s, "team-a", &[], "nginx:1");
    assert_eq!(d.rule(), Some("team-*"));
}

#[test]
fn audit_mode() {
    let s = policy("  mode: audit\n  registries:\n    deny: [docker.io]\n");
    assert_eq!(s.mode(), Mode::Audit);
    let d = decide(&s, "d", &[], "nginx:1");
    assert_eq!(d.reason(), Reason::RegistryDenied);
    assert!(!d.verdict_allowed());
    assert!(d.allowed());
    assert_eq!(d.mode(), Mode::Audit);
    assert!(
        d.explain("nginx:1")
            .to_string()
            .ends_with("(audit mode: not enforced)")
    );
    // invalid references are still reported as such, and admitted only
    // because audit mode admits every verdict
    let d = decide(&s, "d", &[], "Nginx");
    assert_eq!(d.reason(), Reason::InvalidReference);
    assert!(d.allowed());
}

const GLASS: &str = "break-glass.image-policy.k8s.io/reason";

#[test]
fn break_glass_is_off_by_default() {
    let s = policy("  registries:\n    deny: [docker.io]\n");
    let d = decide(&s, "d", &[(GLASS, "incident")], "nginx:1");
    assert_eq!(d.reason(), Reason::RegistryDenied);
    let s = policy(
        "  registries:\n    deny: [docker.io]\n  breakGlass:\n    annotation: x.image-policy.k8s.io/y\n",
    );
    let d = decide(
        &s,
        "d",
        &[("x.image-policy.k8s.io/y", "incident")],
        "nginx:1",
    );
    assert_eq!(d.reason(), Reason::RegistryDenied);
}

#[test]
fn break_glass_admits_denied_images() {
    let s = policy(
        "  registries:\n    deny: [docker.io]\n  tags:\n    forbid: [latest]\n  breakGlass:\n    enabled: true\n    namespaces: [\"team-*\", ops]\n",
    );
    let glass = [("other", "x"), (GLASS, "INC-42 rollback")];
    let d = decide(&s, "team-a", &glass, "nginx:1");
    assert_eq!(d.reason(), Reason::BreakGlass);
    assert_eq!(d.overridden(), Some(Reason::RegistryDenied));
    assert!(d.verdict_allowed() && d.allowed());
    let text = d.explain("nginx:1").to_string();
    assert!(text.contains("denied by pattern \"docker.io\""), "{text}");
    assert!(text.contains(GLASS), "{text}");
    assert!(
        s.scope(&Context {
            namespace: "ops",
            annotations: &glass,
            user: None,
        })
        .break_glass()
    );
    // allowed images keep their reason
    assert_eq!(
        decide(&s, "team-a", &glass, "ghcr.io/x:1").reason(),
        Reason::Allowed
    );
    // never for invalid references
    assert_eq!(
        decide(&s, "team-a", &glass, "Nginx").reason(),
        Reason::InvalidReference
    );
    assert_eq!(
        decide(&s, "team-a", &glass, "my_registry.com/x").reason(),
        Reason::InvalidReference
    );
    // outside the listed namespaces
    assert_eq!(
        decide(&s, "prod", &glass, "nginx:1").reason(),
        Reason::RegistryDenied
    );
    assert_eq!(
        decide(&s, "", &glass, "nginx:1").reason(),
        Reason::RegistryDenied
    );
    // empty or blank value, other key, key in another case
    for annotations in [
        &[(GLASS, "")][..],
        &[(GLASS, "  ")][..],
        &[("break-glass.image-policy.k8s.io/Reason", "x")][..],
        &[("reason", "x")][..],
        &[][..],
    ] {
        assert_eq!(
            decide(&s, "team-a", annotations, "nginx:1").reason(),
            Reason::RegistryDenied,
            "{annotations:?}"
        );
    }
}

#[test]
fn break_glass_in_every_namespace_when_unlimited() {
    let s = policy(
        "  tags:\n    requireDigest: true\n  breakGlass:\n    enabled: true\n    annotation: emergency.image-policy.k8s.io/ticket\n",
    );
    let glass = [("emergency.image-policy.k8s.io/ticket", "T-1")];
    let d = decide(&s, "anything", &glass, "nginx:1");
    assert_eq!(
        (d.reason(), d.overridden()),
        (Reason::BreakGlass, Some(Reason::DigestRequired))
    );
    assert_eq!(
        decide(&s, "anything", &[(GLASS, "x")], "nginx:1").reason(),
        Reason::DigestRequired
    );
}

#[test]
fn explanations_name_the_image_and_the_rule() {
    let s = policy(
        "  registries:\n    allow: [ghcr.io, docker.io]\n    deny: [docker.io/evil, quay.io]\n  tags:\n    forbid: [latest]\n    requireDigest: false\n",
    );
    let cases: &[(&str, &str)] = &[
        (
            "nginx",
            r#"image "nginx" has no tag and would be pulled as "latest""#,
        ),
        (
            "nginx:latest",
            r#"tag "latest" of image "nginx:latest" is forbidden"#,
        ),
        (
            "docker.io/evil/x:1",
            r#"repository "docker.io/evil/x" of image "docker.io/evil/x:1" is denied by pattern "docker.io/evil""#,
        ),
        (
            "gcr.io/x:1",
            r#"repository "gcr.io/x" of image "gcr.io/x:1" matches no pattern of registries.allow"#,
        ),
        ("Nginx", r#"image "Nginx" is not a valid image reference: "#),
        (
            "my_registry.com/x",
            r#"image "my_registry.com/x" has no usable registry host"#,
        ),
        (
            "ghcr.io/a:1",
            r#"image "ghcr.io/a:1" is allowed by registry pattern "ghcr.io""#,
        ),
    ];
    for (image, want) in cases {
        let d = decide(&s, "d", &[], image);
        let text = d.explain(image).to_string();
        assert!(text.starts_with(want), "{image}: {text}");
    }
    let s = policy("  registries:\n    deny: [quay.io]\n");
    let d = decide(&s, "d", &[], "quay.io/x:1");
    assert_eq!(
        d.explain("quay.io/x:1").to_string(),
        r#"registry "quay.io" of image "quay.io/x:1" is denied by pattern "quay.io""#
    );
    // hostile image strings are escaped and cut
    let long = format!("{}\u{1b}", "a".repeat(10_000));
    let d = decide(&s, "d", &[], &long);
    let text = d.explain(&long).to_string();
    assert!(text.len() < 600, "{}", text.len());
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn reason_codes() {
    let codes: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        codes,
        [
            "allowed",
            "exempt",
            "break_glass",
            "invalid_reference",
            "registry_denied",
            "registry_not_allowed",
            "tag_missing",
            "tag_forbidden",
            "digest_required",
            "tag_not_semver",
            "signature_missing",
            "signature_invalid",
            "sbom_missing",
            "vulnerable",
            "vuln_report_missing",
            "vuln_report_stale",
            "verification_unavailable"
        ]
    );
    let allows: Vec<Reason> = Reason::ALL
        .iter()
        .copied()
        .filter(|r| r.is_allow())
        .collect();
    assert_eq!(
        allows,
        [Reason::Allowed, Reason::Exempt, Reason::BreakGlass]
    );
    assert_eq!(Mode::Enforce.as_str(), "enforce");
    assert_eq!(Mode::Audit.to_string(), "audit");
}

#[test]
fn snapshot_is_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Snapshot>();
    fn assert_copy<T: Copy>() {}
    assert_copy::<Decision<'static>>();
}

use super::*;

#[test]
fn expressions_match_the_whole_value() {
    let m = Matcher::pattern("https://github\\.com/mycorp/.*").unwrap();
    assert!(m.matches("https://github.com/mycorp/app"));
    assert!(!m.matches("xhttps://github.com/mycorp/app"));
    let part = Matcher::pattern("mycorp").unwrap();
    assert!(!part.matches("https://github.com/mycorp/app/.github/workflows/x.yml@refs/heads/main"));
    assert!(part.matches("mycorp"));
    // alternatives are anchored as a whole
    let alt = Matcher::pattern("a|b").unwrap();
    assert!(alt.matches("a") && alt.matches("b") && !alt.matches("ab") && !alt.matches("xa"));
    // an expression that would escape the anchoring group is rejected
    assert!(Matcher::pattern("a)|(b").is_err());
    assert!(Matcher::pattern("(a").is_err());
    // no case folding, no trimming, no normalisation
    let exact = Matcher::Exact("https://github.com/mycorp".into());
    assert!(!exact.matches("https://github.com/MyCorp"));
    assert!(!exact.matches("https://github.com/mycorp "));
    assert!(!exact.matches("https://github.com/mycorp\n"));
    // a look-alike (Cyrillic 'о') is another value
    let m = Matcher::pattern("https://github\\.com/mycorp/.*").unwrap();
    assert!(!m.matches("https://github.c\u{43e}m/mycorp/app"));
}

#[test]
fn an_identity_needs_every_part() {
    let mut claims = FulcioCiClaims::default();
    claims.source_repository_uri = Some("https://github.com/mycorp/app".into());
    let signer = Signer {
        subject: "s",
        issuer: "i",
        claims: &claims,
    };
    let id = |claims: Vec<(Claim, String)>| {
        Identity::new(
            Matcher::Exact("i".into()),
            Matcher::Exact("s".into()),
            claims,
        )
    };
    assert!(id(vec![]).accepts(&signer));
    assert!(
        id(vec![(
            Claim::SourceRepositoryUri,
            "https://github.com/mycorp/app".into()
        )])
        .accepts(&signer)
    );
    assert!(
        !id(vec![(
            Claim::SourceRepositoryUri,
            "https://github.com/other/app".into()
        )])
        .accepts(&signer)
    );
    // a claim the certificate does not carry does not match
    assert!(!id(vec![(Claim::RunnerEnvironment, "github-hosted".into())]).accepts(&signer));
    for claim in Claim::ALL {
        assert_eq!(Claim::parse(claim.name()), Some(*claim));
    }
}

#[test]
fn fingerprints_do_not_collide_across_fields() {
    let fp = |issuer: &str, subject: &str| {
        let id = Identity::new(
            Matcher::Exact(issuer.into()),
            Matcher::Exact(subject.into()),
            Vec::new(),
        );
        let mut h = Sha256::new();
        Keyless::new(vec![id], TrustRoot::production()).fingerprint(&mut h);
        h.finalize()
    };
    assert_ne!(fp("x\0=y", "z"), fp("x", "y\0=z"));
    assert_ne!(fp("ab", "c"), fp("a", "bc"));
    assert_eq!(fp("a", "b"), fp("a", "b"));
}

#[test]
fn trusted_roots_are_checked() {
    assert!(TrustRoot::production().is_embedded());
    let e = TrustRoot::from_json("{\n  \"tlogs\": 3\n}").unwrap_err();
    assert_eq!(e.at.map(|(l, _)| l), Some(2), "{e}");
    let e = TrustRoot::from_json("").unwrap_err();
    assert!(e.at.is_some(), "{e}");
    let empty = "{\"mediaType\":\"application/vnd.dev.sigstore.trustedroot+json;version=0.1\",\"tlogs\":[],\"certificateAuthorities\":[],\"ctlogs\":[],\"timestampAuthorities\":[]}";
    let e = TrustRoot::from_json(empty).unwrap_err();
    assert!(e.message.contains("nothing to trust"), "{e}");
}

#[test]
fn a_lone_surrogate_is_a_located_error() {
    // found by the `trusted_root` fuzz target: JSON that only a strict
    // reader refuses (an unpaired UTF-16 escape in an ignored key)
    let text = "{\n  \"x\\ud860y\": 1\n}";
    let e = TrustRoot::from_json(text).unwrap_err();
    assert_eq!(e.at.map(|(line, _)| line), Some(2), "{e}");
}

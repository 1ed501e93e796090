use std::time::Duration;

use super::call::retry_after;
use super::urls::encode;
use super::*;

#[test]
fn helpers() {
    assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    let mut h = http::HeaderMap::new();
    h.insert(header::RETRY_AFTER, "3".parse().unwrap());
    assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
    h.insert(
        header::RETRY_AFTER,
        "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
    );
    assert_eq!(retry_after(&h), Some(Duration::ZERO));
    h.insert(
        header::LINK,
        "</v2/a/referrers/sha256:x?n=2>; rel=\"next\""
            .parse()
            .unwrap(),
    );
    assert_eq!(
        next_link(&h).as_deref(),
        Some("/v2/a/referrers/sha256:x?n=2")
    );
    h.insert(
        header::LINK,
        "<https://evil/x>; rel=\"next\"".parse().unwrap(),
    );
    assert_eq!(next_link(&h), None);
}

#[test]
fn targets_and_redirects() {
    let r = Registry::new(RegistryConfig {
        insecure: vec!["127.0.0.1:5000".into()],
        ..RegistryConfig::default()
    });
    let t = r.target("docker.io", "/v2/").unwrap();
    assert!(t.https && t.authority == "registry-1.docker.io");
    let l = r.target("127.0.0.1:5000", "/v2/").unwrap();
    assert!(!l.https);
    assert!(r.redirect(&t, "http://storage.example/x").is_err());
    let rel = r.redirect(&l, "/v2/x/blobs/y?z").unwrap();
    assert_eq!(
        (rel.https, rel.authority.as_str(), rel.path.as_str()),
        (false, "127.0.0.1:5000", "/v2/x/blobs/y?z")
    );
    assert!(r.target("", "/").is_err());
}

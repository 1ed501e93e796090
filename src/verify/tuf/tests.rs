use super::*;

#[test]
fn paths_are_encoded() {
    assert_eq!(encode_path("2.root.json"), "2.root.json");
    assert_eq!(
        encode_path("targets/abc.trusted_root.json"),
        "targets/abc.trusted_root.json"
    );
    assert_eq!(encode_path("a b?c#d%"), "a%20b%3Fc%23d%25");
    assert_eq!(encode_path("é"), "%C3%A9");
}

#[test]
fn roots_are_kept_per_source() {
    let roots = TufRoots::default();
    assert!(!roots.put([1; 32], "a"), "not a source of the policy");
    assert_eq!(roots.get(&[1; 32]), None);
    roots.retain(&[[1; 32], [2; 32]]);
    assert!(roots.put([1; 32], "a"));
    let compiled = roots.generation();
    assert!(roots.put([1; 32], "a"), "unchanged but not in force yet");
    roots.applied(compiled);
    assert!(!roots.put([1; 32], "a"), "unchanged and in force");
    assert!(roots.put([1; 32], "b"));
    assert!(roots.put([2; 32], "c"));
    assert_eq!(roots.get(&[1; 32]).as_deref(), Some("b"));
    roots.retain(&[[2; 32]]);
    assert_eq!(roots.get(&[1; 32]), None);
    assert!(
        !roots.put([1; 32], "late"),
        "a late answer for a removed source"
    );
    assert_eq!(roots.get(&[1; 32]), None);
    assert_eq!(roots.get(&[2; 32]).as_deref(), Some("c"));
}

#[test]
fn versioned_snapshots_are_not_kept() {
    let store = TufStore::default();
    for name in [
        "7.snapshot.json",
        "snapshot.json",
        "timestamp.json",
        "2.root.json",
    ] {
        store.store(name, b"x").unwrap();
    }
    assert_eq!(store.load("7.snapshot.json").unwrap(), None);
    assert_eq!(
        store.load("snapshot.json").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        store.load("2.root.json").unwrap().as_deref(),
        Some(&b"x"[..])
    );
    assert!(store.load("timestamp.json").unwrap().is_some());
}

#[test]
fn redirects_keep_to_the_rules() {
    let from = Destination {
        https: true,
        authority: "tuf.example".into(),
        path: "/repo/timestamp.json".into(),
    };
    let to = redirect(&from, "https://bucket.example:8443/t.json?sig=1").unwrap();
    assert_eq!(
        (to.https, to.authority.as_str(), to.path.as_str()),
        (true, "bucket.example:8443", "/t.json?sig=1")
    );
    let same = redirect(&from, "/other/timestamp.json").unwrap();
    assert_eq!(
        (same.https, same.authority.as_str(), same.path.as_str()),
        (true, "tuf.example", "/other/timestamp.json")
    );
    assert!(
        redirect(&from, "http://tuf.example/x").is_err(),
        "downgrade"
    );
    assert!(redirect(&from, "relative/x").is_err());
    assert!(redirect(&from, "ftp://tuf.example/x").is_err());
    assert!(redirect(&from, "https://u:p@tuf.example/x").is_err());
    let plain = Destination {
        https: false,
        ..from
    };
    assert!(!redirect(&plain, "http://mirror.example/x").unwrap().https);
    assert!(redirect(&plain, "https://mirror.example/x").unwrap().https);
}

use super::*;
use proptest::prelude::*;

/// The expressions written the obvious way, split on their separators:
/// the one-pass scanners above must agree with them.
fn naive_is_path(s: &str) -> bool {
    s.split('/').all(naive_component)
}

fn naive_component(s: &str) -> bool {
    // `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: alphanumeric runs joined by
    // exactly one separator each.
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut runs = Vec::new();
    let mut seps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let is_alnum = alnum(&b[i]);
        while i < b.len() && alnum(&b[i]) == is_alnum {
            i += 1;
        }
        if is_alnum {
            runs.push(&s[start..i]);
        } else {
            seps.push(&s[start..i]);
        }
    }
    let first_alnum = b.first().is_some_and(alnum);
    let last_alnum = b.last().is_some_and(alnum);
    first_alnum
        && last_alnum
        && seps
            .iter()
            .all(|sep| *sep == "." || *sep == "_" || *sep == "__" || sep.bytes().all(|c| c == b'-'))
}

fn naive_is_domain_name(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    })
}

#[test]
fn scanners_on_edge_cases() {
    for (s, path, domain) in [
        ("", false, false),
        ("a", true, true),
        ("a/b", true, false),
        ("a/", false, false),
        ("/a", false, false),
        ("a//b", false, false),
        ("a__b/c-d.e", true, false),
        ("a___b", false, false),
        ("a.-b", false, false),
        ("a---b", true, true),
        ("A", false, true),
        ("a.b", true, true),
        ("a..b", false, false),
        ("a.", false, false),
        ("-a", false, false),
        ("a-", false, false),
    ] {
        assert_eq!(is_path(s), path, "is_path({s:?})");
        assert_eq!(is_path(s), naive_is_path(s), "naive is_path({s:?})");
        assert_eq!(is_domain_name(s), domain, "is_domain_name({s:?})");
        assert_eq!(
            naive_is_domain_name(s),
            domain,
            "naive is_domain_name({s:?})"
        );
    }
    assert_eq!(find_byte("a/b/c", b'/'), Some(1));
    assert_eq!(split_once_byte("a:b:c", b':'), Some(("a", "b:c")));
    assert_eq!(split_once_byte("abc", b':'), None);
    assert_eq!(
        split_name_tag_digest("h:5000/a/b:t@sha256:0123456789abcdef0123456789abcdef"),
        Some((
            "h:5000/a/b",
            Some("t"),
            Some("sha256:0123456789abcdef0123456789abcdef")
        ))
    );
    assert_eq!(
        split_name_tag_digest("h:5000/a"),
        Some(("h:5000/a", None, None))
    );
    assert_eq!(split_name_tag_digest("a:t/b"), Some(("a:t/b", None, None)));
    assert_eq!(split_name_tag_digest("a@b"), None);
}

proptest! {
    #[test]
    fn scanners_agree_with_the_split_forms(s in "[a-zA-Z0-9._/-]{0,24}|\\PC{0,12}") {
        prop_assert_eq!(is_path(&s), naive_is_path(&s));
        prop_assert_eq!(is_domain_name(&s), naive_is_domain_name(&s));
    }
}

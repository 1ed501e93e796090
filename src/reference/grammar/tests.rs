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
fn byte_classes_are_the_grammar_ranges() {
    for b in 0..=u8::MAX {
        assert_eq!(
            is(b, LOWER_DIGIT),
            b.is_ascii_lowercase() || b.is_ascii_digit(),
            "{b}"
        );
        assert_eq!(is(b, ALNUM), b.is_ascii_alphanumeric(), "{b}");
        assert_eq!(
            is(b, ALNUM | TAG_PUNCT),
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'),
            "{b}"
        );
    }
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

/// The first `@`, and the last `/` and `:` before it, as `str` methods
/// find them.
fn naive_split(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (before, digest) = match s.split_once('@') {
        Some((before, digest)) => (before, Some(digest)),
        None => (s, None),
    };
    if digest.is_some_and(|d| !naive_is_digest_syntax(d)) {
        return None;
    }
    let (name, tag) = match before.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (before, None),
    };
    if tag.is_some_and(|t| !is_tag(t)) {
        return None;
    }
    Some((name, tag, digest))
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
/// by splitting.
fn naive_is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.starts_with(|c: char| c.is_ascii_alphabetic())
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    }) && hex.len() >= 32
        && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// `^ALGO:[0-9a-fA-F]+(@.*)?$` by splitting.
fn naive_is_local_image_id(s: &str) -> bool {
    let name = s.split_once('@').map_or(s, |(name, _)| name);
    name.split_once(':').is_some_and(|(algorithm, hex)| {
        IMAGE_ID_ALGORITHMS.contains(&algorithm)
            && !hex.is_empty()
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

proptest! {
    /// The searches and byte loops that make references fast say what the
    /// plain `str` forms say, on strings dense in the characters that
    /// matter (`@`, `:`, `/`, hex, algorithm names).
    #[test]
    fn fast_splits_agree_with_the_plain_forms(
        s in "((sha256|sha512|blake3|md5|[a-z]{1,7})[-_+.]?[a-z0-9]{0,3}:)?[0-9a-fA-Fg:@/._+-]{0,80}\
              |[a-z0-9./:]{0,20}(:[a-z0-9_.-]{1,5})?@(sha256|[a-zA-Z][a-z0-9]{0,3}([-_+.][a-z]{1,3})?|1x|a-):[0-9a-fA-F]{28,70}[g@:]?\
              |(sha256|sha384|blake3|sha25):[0-9a-fA-F]{0,70}(@.{0,10})?\
              |\\PC{0,40}"
    ) {
        prop_assert_eq!(split_name_tag_digest(&s), naive_split(&s));
        prop_assert_eq!(is_digest_syntax(&s), naive_is_digest_syntax(&s));
        prop_assert_eq!(is_local_image_id(&s), naive_is_local_image_id(&s));
    }
}

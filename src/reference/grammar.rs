//! The reference grammar of `distribution/reference`, as byte scanners.
//!
//! Each function here is one anchored regular expression of the upstream
//! package (named in its doc), written out by hand so that it runs in one
//! pass, borrows, and cannot backtrack badly on hostile input. Only ASCII is
//! ever accepted, so byte offsets are always character boundaries.

use super::error::{ParseErrorKind, ParseReferenceError};

/// `[a-z0-9]`: a path component's letters.
const LOWER_DIGIT: u8 = 1;
/// `[A-Z]`.
const UPPER: u8 = 2;
/// `[._-]`: the punctuation a tag may hold after its first character.
const TAG_PUNCT: u8 = 4;
/// `[A-Za-z0-9]`.
const ALNUM: u8 = LOWER_DIGIT | UPPER;

/// The class bits of every byte: the scanners below test one table entry
/// per byte instead of a chain of ranges (the path and domain loops are
/// most of a parse).
static CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            LOWER_DIGIT
        } else if c.is_ascii_uppercase() {
            UPPER
        } else if matches!(c, b'.' | b'_' | b'-') {
            TAG_PUNCT
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Whether `b` is in one of the classes of `mask`.
#[inline]
fn is(b: u8, mask: u8) -> bool {
    CLASS[usize::from(b)] & mask != 0
}

/// The pieces the full-reference expression captures.
#[derive(Clone, Copy, Debug)]
pub(super) struct Parts<'a> {
    pub(super) domain: &'a str,
    pub(super) path: &'a str,
    pub(super) tag: Option<&'a str>,
    pub(super) digest: Option<&'a str>,
}

/// `^[a-f0-9]{64}$`: a bare image ID, never a name.
pub(super) fn is_identifier(s: &str) -> bool {
    s.len() == 64 && all_bytes(s, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The digest algorithms a runtime's image store knows (go-digest's
/// registered ones: sha256, sha384, sha512, and blake3 where linked in).
const IMAGE_ID_ALGORITHMS: [&str; 4] = ["sha256", "sha384", "sha512", "blake3"];

/// `^ALGO:[0-9a-fA-F]+(@.*)?$` with a known digest algorithm: what
/// containerd's CRI (`LocalResolve`, then the image store's short-ID
/// lookup), CRI-O and Docker resolve as a local image ID, full or
/// shortened, before (or instead of) pulling. Upstream parses it as
/// `docker.io/library/ALGO` with a hex tag, and the kubelet's default pull
/// policy for a tag other than `latest` is `IfNotPresent`.
pub(super) fn is_local_image_id(s: &str) -> bool {
    // Every algorithm name has six letters: anything without `:` at byte 6
    // is not one (the common case, decided without a scan).
    const NAME: usize = 6;
    debug_assert!(IMAGE_ID_ALGORITHMS.iter().all(|a| a.len() == NAME));
    if s.as_bytes().get(NAME) != Some(&b':') || !IMAGE_ID_ALGORITHMS.contains(&&s[..NAME]) {
        return false;
    }
    let rest = &s[NAME + 1..];
    let hex = split_once_byte(rest, b'@').map_or(rest, |(hex, _)| hex);
    !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `Parse` (no normalization): `^((?:DOMAIN/)?PATH)(?::TAG)?(?:@DIGEST)?$`
/// with the upstream's leftmost-first preference for a domain.
pub(super) fn parse_strict(s: &str) -> Result<Parts<'_>, ()> {
    let (name, tag, digest) = split_name_tag_digest(s).ok_or(())?;
    // A domain cannot hold `/`, so if the optional domain group matches at
    // all it is exactly the first component; otherwise the whole name is a
    // path. Either way the rest must be a path.
    if let Some((first, rest)) = split_once_byte(name, b'/')
        && is_domain(first)
        && is_path(rest)
    {
        return Ok(Parts {
            domain: first,
            path: rest,
            tag,
            digest,
        });
    }
    if is_path(name) {
        return Ok(Parts {
            domain: "",
            path: name,
            tag,
            digest,
        });
    }
    Err(())
}

/// Splits `name[:tag][@digest]` and checks the tag and digest syntax.
///
/// `@` appears nowhere but before the digest, and `:` in a name only inside
/// the domain (port, IPv6), which is always followed by `/`; so the digest
/// starts at the first `@` and a tag is whatever follows the last `:` when
/// no `/` comes after it. This is the only split the expression can match.
pub(super) fn split_name_tag_digest(s: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    // The first `@`; then, scanning back from it, the last `:` unless a
    // `/` comes first (only the tag, or the last path component, is read).
    let bytes = s.as_bytes();
    let at = memchr::memchr(b'@', bytes);
    let name_part = &bytes[..at.unwrap_or(bytes.len())];
    let last_colon = name_part
        .iter()
        .rposition(|&b| b == b':' || b == b'/')
        .filter(|&i| name_part[i] == b':');
    let (before, digest) = match at {
        Some(i) => {
            let digest = &s[i + 1..];
            if !is_digest_syntax(digest) {
                return None;
            }
            (&s[..i], Some(digest))
        }
        None => (s, None),
    };
    let (name, tag) = match last_colon {
        Some(colon) => {
            let tag = &before[colon + 1..];
            if !is_tag(tag) {
                return None;
            }
            (&before[..colon], Some(tag))
        }
        _ => (before, None),
    };
    Some((name, tag, digest))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
pub(super) fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= 128
                && (is(*first, ALNUM) || *first == b'_')
                && rest.iter().all(|&c| is(c, ALNUM | TAG_PUNCT))
        }
        None => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, hex)) = split_once_byte(s, b':') else {
        return false;
    };
    // Components of a letter then letters and digits, between separators.
    let mut expect_letter = true;
    for &b in algorithm.as_bytes() {
        if expect_letter {
            if !b.is_ascii_alphabetic() {
                return false;
            }
            expect_letter = false;
        } else if matches!(b, b'-' | b'_' | b'+' | b'.') {
            expect_letter = true;
        } else if !b.is_ascii_alphanumeric() {
            return false;
        }
    }
    !expect_letter && hex.len() >= 32 && all_bytes(hex, |b| b.is_ascii_hexdigit())
}

/// go-digest's `Digest.Validate` for a string that already passed
/// [`is_digest_syntax`]: a registered algorithm, the exact hex length, and
/// lower-case hex.
pub(super) fn validate_digest(s: &str) -> Result<(), ParseReferenceError> {
    let Some((algorithm, hex)) = split_once_byte(s, b':') else {
        return Err(ParseReferenceError::new(ParseErrorKind::DigestFormat));
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ParseReferenceError::new(ParseErrorKind::DigestUnsupported)),
    };
    if hex.len() != expected {
        return Err(ParseReferenceError::new(ParseErrorKind::DigestLength));
    }
    if !all_bytes(hex, |b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ParseReferenceError::new(ParseErrorKind::DigestFormat));
    }
    Ok(())
}

/// `host(:port)?` where host is a domain name or a bracketed IPv6 literal.
fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        // `\[[a-fA-F0-9:]+\](:[0-9]+)?`
        let Some((ip, after)) = inner.split_once(']') else {
            return false;
        };
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", port),
                None => return false,
            },
        }
    } else {
        match split_once_byte(s, b':') {
            Some((host, port)) => (host, port),
            None => (s, "1"),
        }
    };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    port_ok && (host.is_empty() && s.starts_with('[') || is_domain_name(host))
}

/// `label(\.label)*`, a label being `[a-zA-Z0-9]` or
/// `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
pub(super) fn is_domain_name(s: &str) -> bool {
    let b = s.as_bytes();
    let mut label_start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'.' {
            // A label ends: it must be non-empty and end alphanumeric.
            if i == label_start || !is(b[i - 1], ALNUM) {
                return false;
            }
            label_start = i + 1;
        } else if i == label_start {
            if !is(c, ALNUM) {
                return false;
            }
        } else if !(is(c, ALNUM) || c == b'-') {
            return false;
        }
    }
    label_start < b.len() && is(b[b.len() - 1], ALNUM)
}

/// `component(/component)*`, in one pass over the bytes.
pub(super) fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        // A component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
        loop {
            // One or more alphanumerics.
            let start = i;
            while i < b.len() && is(b[i], LOWER_DIGIT) {
                i += 1;
            }
            if i == start {
                return false;
            }
            if i == b.len() {
                return true;
            }
            // Then a separator: `.`, `_`, `__` or one or more `-`; or `/`
            // and the next component.
            match b[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if b.get(i) == Some(&b'_') {
                        i += 1;
                    }
                }
                b'-' => {
                    while b.get(i) == Some(&b'-') {
                        i += 1;
                    }
                }
                b'/' => {
                    i += 1;
                    break;
                }
                _ => return false,
            }
        }
    }
}

/// Whether every byte of `s` passes `test`, checked without an early exit
/// so that the loop vectorizes (for digests' 64 hex digits and more).
fn all_bytes(s: &str, test: impl Fn(u8) -> bool) -> bool {
    s.bytes().fold(true, |ok, b| ok & test(b))
}

/// The first index of `byte` in `s`.
pub(super) fn find_byte(s: &str, byte: u8) -> Option<usize> {
    memchr::memchr(byte, s.as_bytes())
}

/// `s` split around the first `byte`.
pub(super) fn split_once_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    find_byte(s, byte).map(|i| (&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests;

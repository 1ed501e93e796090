//! The reference grammar of `distribution/reference`, as byte scanners.
//!
//! Each function here is one anchored regular expression of the upstream
//! package (named in its doc), written out by hand so that it runs in one
//! pass, borrows, and cannot backtrack badly on hostile input. Only ASCII is
//! ever accepted, so byte offsets are always character boundaries.

use super::error::{ParseErrorKind, ParseReferenceError};

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
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `Parse` (no normalization): `^((?:DOMAIN/)?PATH)(?::TAG)?(?:@DIGEST)?$`
/// with the upstream's leftmost-first preference for a domain.
pub(super) fn parse_strict(s: &str) -> Result<Parts<'_>, ()> {
    let (name, tag, digest) = split_name_tag_digest(s).ok_or(())?;
    // A domain cannot hold `/`, so if the optional domain group matches at
    // all it is exactly the first component; otherwise the whole name is a
    // path. Either way the rest must be a path.
    if let Some((first, rest)) = name.split_once('/')
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
    let (before, digest) = match s.split_once('@') {
        Some((before, digest)) => {
            if !is_digest_syntax(digest) {
                return None;
            }
            (before, Some(digest))
        }
        None => (s, None),
    };
    let last_slash = before.rfind('/');
    let (name, tag) = match before.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
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
fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            b.len() <= 128
                && (first.is_ascii_alphanumeric() || *first == b'_')
                && rest
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        }
        None => false,
    }
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic) && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algorithm_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's `Digest.Validate` for a string that already passed
/// [`is_digest_syntax`]: a registered algorithm, the exact hex length, and
/// lower-case hex.
pub(super) fn validate_digest(s: &str) -> Result<(), ParseReferenceError> {
    let Some((algorithm, hex)) = s.split_once(':') else {
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
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
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
        match s.split_once(':') {
            Some((host, port)) => (host, port),
            None => (s, "1"),
        }
    };
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    port_ok && (host.is_empty() && s.starts_with('[') || is_domain_name(host))
}

/// `label(\.label)*`, a label being `[a-zA-Z0-9]` or
/// `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_name(s: &str) -> bool {
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

/// `component(/component)*`
pub(super) fn is_path(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        // One or more alphanumerics.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // Then a separator: `.`, `_`, `__` or one or more `-`.
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
            _ => return false,
        }
    }
}

//! Registry patterns (`DOMAIN[/PATH]`, CONTRACT §3 rules 2–5): parsing,
//! validation, and the plain linear matcher that states the rules directly.
//!
//! The trie in `trie.rs` must answer exactly like [`Pattern::matches`]; a
//! property test holds them to it. Matching allocates nothing.

use std::fmt;
use std::net::Ipv6Addr;

use super::target::{Form, Host, Ipv6Key, RevLabels, normalize_port, split_host_port};
use crate::reference::{is_domain_label, is_path_component};

/// Longest pattern accepted; it bounds the trie's height and so the depth of
/// every lookup.
pub(crate) const MAX_PATTERN_LEN: usize = 512;

/// Longest domain label accepted in a pattern (the DNS limit). An image
/// label longer than this can only match `*`.
pub(crate) const MAX_LABEL_LEN: usize = 63;

/// Docker Hub's canonical domain; every spelling that reaches the same
/// registry is in [`crate::reference::DOCKER_HUB_HOSTS`] (`index.docker.io`
/// is rewritten by the parser only when written exactly so;
/// `registry-1.docker.io` is the host runtimes actually contact).
pub(crate) const HUB: &str = crate::reference::DOCKER_HUB;
pub(crate) use crate::reference::DOCKER_HUB_HOSTS as HUB_ALIASES;
pub(crate) const OFFICIAL: &str = "library";

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    message: String,
}

impl PatternError {
    fn new(message: String) -> PatternError {
        PatternError { message }
    }
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PatternError {}

/// One label of a domain or one component of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Matches this text (lower case; compared case-insensitively).
    Literal(Box<str>),
    /// `*`: matches exactly one label or component.
    Star,
}

impl Segment {
    fn matches(&self, text: &str) -> bool {
        match self {
            Segment::Literal(lit) => lit.eq_ignore_ascii_case(text),
            Segment::Star => true,
        }
    }
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// DNS labels, left to right as written.
    Labels(Vec<Segment>),
    /// An IPv6 literal in canonical form, brackets included (`[::1]`).
    Ipv6(Box<str>),
}

/// A compiled pattern: host, normalized port, path prefix.
///
/// A trailing `**` is not stored: every pattern is a prefix of the paths it
/// matches, so `ghcr.io/mycorp/**` and `ghcr.io/mycorp` are the same rule
/// (both match `ghcr.io/mycorp` itself, zero further components).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pub(crate) host: HostPattern,
    /// Digits without leading zeros; "" for no port and for 443.
    pub(crate) port: Box<str>,
    pub(crate) path: Vec<Segment>,
}

impl Pattern {
    /// Parses and validates one pattern.
    pub(crate) fn parse(text: &str) -> Result<Pattern, PatternError> {
        check_characters(text)?;
        if let Some(at) = text.find('@') {
            return Err(PatternError::new(format!(
                "pattern {text:?} names a digest ({:?}); patterns name registries and repositories only",
                &text[at..]
            )));
        }
        let (first, rest) = match text.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (text, None),
        };
        if first == "*" || first == "**" {
            return Err(ambiguous_wildcard(text));
        }
        // The same test image references use to find a domain, plus: a
        // pattern without `/` may be a bare domain (`docker.io`, `host:5000`).
        let is_domain = first.contains(['.', ':'])
            || first == "localhost"
            || (rest.is_some() && first.bytes().any(|b| b.is_ascii_uppercase()));
        if !is_domain {
            let mut path = parse_path(text, text)?;
            if rest.is_none() {
                // `nginx` is `docker.io/library/nginx`, as for images.
                path.insert(0, Segment::Literal(OFFICIAL.into()));
            }
            return Ok(Pattern {
                host: hub_host(),
                port: "".into(),
                path,
            });
        }
        let (host, port) = parse_domain(first, text)?;
        let path = match rest {
            Some(rest) => parse_path(rest, text)?,
            None => Vec::new(),
        };
        let host = match host {
            HostPattern::Labels(labels) if port.is_empty() && is_hub_labels(&labels) => hub_host(),
            host => host,
        };
        Ok(Pattern { host, port, path })
    }

    /// The linear matcher: the rules of CONTRACT §3 stated directly.
    pub(crate) fn matches(&self, form: &Form<'_>) -> bool {
        let host_ok = match (&self.host, &form.host) {
            (HostPattern::Ipv6(want), Host::Ipv6(have)) => **want == *Ipv6Key::new(*have).as_str(),
            (HostPattern::Labels(labels), Host::Name(name)) => {
                let mut have = RevLabels::new(name);
                labels
                    .iter()
                    .rev()
                    .all(|want| have.next().is_some_and(|label| want.matches(label)))
                    && have.next().is_none()
            }
            _ => false,
        };
        if !host_ok || *self.port != *form.port {
            return false;
        }
        let mut have = form.components();
        self.path
            .iter()
            .all(|want| have.next().is_some_and(|c| want.matches(c)))
    }
}

/// A pattern that starts with a wildcard component (`*`, `**`, `*/app`)
/// reads as a Docker Hub path by the domain rule (no `.` or `:`), so `**`
/// would mean `docker.io/library/**`, not "everything": refused, with what
/// was probably meant.
fn ambiguous_wildcard(text: &str) -> PatternError {
    PatternError::new(format!(
        "pattern {text:?} starts with a wildcard component, which is ambiguous: \
         it would be read as a Docker Hub path (\"docker.io/library/...\"), not as every registry. \
         Write the registry: \"docker.io/**\" for all of Docker Hub, \"docker.io/*/app\" for a \
         repository in any Docker Hub namespace, \"*.example.com\" for one DNS label of a domain; \
         to admit only listed registries, list them under allow"
    ))
}

fn hub_host() -> HostPattern {
    HostPattern::Labels(vec![
        Segment::Literal("docker".into()),
        Segment::Literal("io".into()),
    ])
}

fn is_hub_labels(labels: &[Segment]) -> bool {
    HUB_ALIASES.iter().any(|alias| {
        let mut parts = alias.split('.');
        labels.iter().all(|l| match (l, parts.next()) {
            (Segment::Literal(l), Some(p)) => **l == *p,
            _ => false,
        }) && parts.next().is_none()
    })
}

fn check_characters(text: &str) -> Result<(), PatternError> {
    if text.is_empty() {
        return Err(PatternError::new("empty pattern".into()));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        let what = if c.is_whitespace() {
            "whitespace"
        } else if c.is_control() {
            "a control character"
        } else {
            "a non-ASCII character"
        };
        return Err(PatternError::new(format!(
            "pattern {text:?} contains {what} ({:?}, U+{:04X})",
            c, c as u32
        )));
    }
    if text.len() > MAX_PATTERN_LEN {
        return Err(PatternError::new(format!(
            "pattern is longer than {MAX_PATTERN_LEN} characters"
        )));
    }
    Ok(())
}

fn parse_domain(domain: &str, text: &str) -> Result<(HostPattern, Box<str>), PatternError> {
    let (host, port) = split_host_port(domain);
    let port = match port {
        None => "".into(),
        Some(port) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                let hint = if text.contains('/') {
                    ""
                } else {
                    "; patterns take no tag: use spec.tags for tag rules"
                };
                return Err(PatternError::new(format!(
                    "invalid port {port:?} in pattern {text:?}: a port is a number{hint}"
                )));
            }
            normalize_port(port).into()
        }
    };
    if let Some(inner) = host.strip_prefix('[') {
        let addr = inner
            .strip_suffix(']')
            .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'))
            .and_then(|a| a.parse::<Ipv6Addr>().ok())
            .ok_or_else(|| {
                PatternError::new(format!("invalid IPv6 address {host:?} in pattern {text:?}"))
            })?;
        return Ok((HostPattern::Ipv6(format!("[{addr}]").into()), port));
    }
    let mut labels = Vec::new();
    for label in host.split('.') {
        labels.push(parse_label(label, text)?);
    }
    Ok((HostPattern::Labels(labels), port))
}

fn parse_label(label: &str, text: &str) -> Result<Segment, PatternError> {
    match label {
        "" => Err(PatternError::new(format!(
            "empty domain label in pattern {text:?}"
        ))),
        "*" => Ok(Segment::Star),
        "**" => Err(PatternError::new(format!(
            "\"**\" in the domain of pattern {text:?}: it may only end a path; use \"*\" for one label"
        ))),
        _ if label.contains('*') => Err(PatternError::new(format!(
            "\"*\" must be a whole domain label, not part of {label:?} in pattern {text:?}"
        ))),
        _ if label.len() > MAX_LABEL_LEN => Err(PatternError::new(format!(
            "domain label {label:?} in pattern {text:?} is longer than {MAX_LABEL_LEN} characters"
        ))),
        _ if is_domain_label(label) => Ok(Segment::Literal(label.to_ascii_lowercase().into())),
        _ => Err(PatternError::new(format!(
            "invalid domain label {label:?} in pattern {text:?}"
        ))),
    }
}

fn parse_path(path: &str, text: &str) -> Result<Vec<Segment>, PatternError> {
    let mut segments = Vec::new();
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let segment = match part {
            "" => {
                return Err(PatternError::new(format!(
                    "empty path component in pattern {text:?}"
                )));
            }
            "**" if parts.peek().is_some() => {
                return Err(PatternError::new(format!(
                    "\"**\" must be the last component of pattern {text:?}"
                )));
            }
            // Prefix semantics already cover any number of further
            // components, so a trailing `**` adds nothing to store.
            "**" => break,
            "*" => Segment::Star,
            _ if part.contains('*') => {
                return Err(PatternError::new(format!(
                    "\"*\" must be a whole path component, not part of {part:?} in pattern {text:?}"
                )));
            }
            _ if part.contains(':') => {
                return Err(PatternError::new(format!(
                    "pattern {text:?} names a tag; patterns name registries and repositories only (use spec.tags for tag rules)"
                )));
            }
            _ if part.bytes().any(|b| b.is_ascii_uppercase()) => {
                return Err(PatternError::new(format!(
                    "path component {part:?} of pattern {text:?} has upper case; repository paths are lower case"
                )));
            }
            _ if is_path_component(part) => Segment::Literal(part.into()),
            _ => {
                return Err(PatternError::new(format!(
                    "invalid path component {part:?} in pattern {text:?}"
                )));
            }
        };
        segments.push(segment);
    }
    Ok(segments)
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;

//! Registry patterns (`DOMAIN[/PATH]`, CONTRACT §3 rules 2–5): parsing and
//! validation, the matching view of an image ([`Target`]), and the plain
//! linear matcher that states the rules directly.
//!
//! The trie in `trie.rs` must answer exactly like [`Pattern::matches`]; a
//! property test holds them to it. Nothing here allocates per image.

use std::fmt::{self, Write as _};
use std::net::Ipv6Addr;

use crate::reference::{Components, Reference};

/// Longest pattern accepted; it bounds the trie's height and so the depth of
/// every lookup.
pub(crate) const MAX_PATTERN_LEN: usize = 512;

/// Docker Hub's canonical domain and the spellings that reach the same
/// registry (`index.docker.io` is rewritten by the parser only when written
/// exactly so; `registry-1.docker.io` is the host runtimes actually contact).
const HUB: &str = "docker.io";
const HUB_ALIASES: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];
const OFFICIAL: &str = "library";

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
            (HostPattern::Ipv6(want), Host::Ipv6(have)) => **want == *have.as_str(),
            (HostPattern::Labels(labels), Host::Name(name)) => {
                let mut have = name.rsplit('.');
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

/// `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(part: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = part.as_bytes();
    let mut i = 0;
    loop {
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
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// Splits `host[:port]` and `[v6][:port]`; the port is returned unchecked.
fn split_host_port(domain: &str) -> (&str, Option<&str>) {
    if domain.starts_with('[') {
        return match domain.find(']') {
            Some(end) => {
                let (host, rest) = domain.split_at(end + 1);
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    // Garbage after `]`: leave it in the host so that
                    // validation rejects it.
                    None => (domain, None),
                }
            }
            None => (domain, None),
        };
    }
    match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    }
}

/// Leading zeros stripped (`05000` is `5000`); 443 is no port at all,
/// since every runtime reaches a registry named without a port over HTTPS
/// on 443: `evil.example:443` is the same server as `evil.example`.
fn normalize_port(port: &str) -> &str {
    let trimmed = port.trim_start_matches('0');
    match trimmed {
        "" => "0",
        "443" => "",
        p => p,
    }
}

/// An IPv6 literal in canonical form, `[` and `]` included, on the stack.
#[derive(Clone, Copy)]
pub(crate) struct Ipv6Key {
    buf: [u8; 48],
    len: u8,
}

impl Ipv6Key {
    fn new(addr: Ipv6Addr) -> Ipv6Key {
        let mut key = Ipv6Key {
            buf: [0; 48],
            len: 0,
        };
        // The longest form is 41 bytes, so this never fails; if it did,
        // the key would be a prefix that no pattern equals.
        let _ = write!(key, "[{addr}]");
        key
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Write for Ipv6Key {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        let dst = self.buf.get_mut(start..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

/// The host of an image, as the matchers see it.
#[derive(Clone, Copy)]
pub(crate) enum Host<'a> {
    /// A DNS name or IPv4 address (case as written).
    Name(&'a str),
    /// An IPv6 literal, canonical.
    Ipv6(Ipv6Key),
}

/// One spelling of an image's repository to match patterns against.
#[derive(Clone, Copy)]
pub(crate) struct Form<'a> {
    pub(crate) host: Host<'a>,
    /// Normalized like pattern ports.
    pub(crate) port: &'a str,
    /// `library` is put in front of the reference's components.
    library: bool,
    reference: Reference<'a>,
}

impl<'a> Form<'a> {
    /// The parsed image this form was made from.
    pub(crate) fn reference(&self) -> Reference<'a> {
        self.reference
    }

    pub(crate) fn components(&self) -> Comps<'a> {
        Comps {
            library: self.library,
            inner: self.reference.components(),
        }
    }
}

/// Path components of a [`Form`].
#[derive(Clone)]
pub(crate) struct Comps<'a> {
    library: bool,
    inner: Components<'a>,
}

impl<'a> Iterator for Comps<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.library {
            self.library = false;
            return Some(OFFICIAL);
        }
        self.inner.next()
    }
}

/// What patterns are matched against for one image: the registry as
/// written and, for a Docker Hub alias, Docker Hub's canonical spelling.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) literal: Form<'a>,
    /// Set when the image names Docker Hub in a way that differs from
    /// `docker.io/...` as parsed (`registry-1.docker.io/nginx`,
    /// `DOCKER.IO/x`, `docker.io:443/x`): a pattern matches the image when
    /// it matches either spelling, so an alias cannot dodge a deny.
    pub(crate) hub: Option<Form<'a>>,
}

impl<'a> Target<'a> {
    /// `None` when the registry cannot be pulled from predictably: an empty
    /// domain (the parser's `my_registry.com/foo` quirk) or an IPv6 literal
    /// that is not an address.
    pub(crate) fn new(reference: Reference<'a>) -> Option<Target<'a>> {
        let domain = reference.domain();
        if domain.is_empty() {
            return None;
        }
        let (host, port) = split_host_port(domain);
        let port = port.map_or("", normalize_port);
        let host = match host.strip_prefix('[') {
            Some(inner) => {
                let addr = inner.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?;
                Host::Ipv6(Ipv6Key::new(addr))
            }
            None => Host::Name(host),
        };
        let literal = Form {
            host,
            port,
            library: false,
            reference,
        };
        let hub = match host {
            Host::Name(name)
                if port.is_empty() && HUB_ALIASES.iter().any(|a| a.eq_ignore_ascii_case(name)) =>
            {
                let single = reference.components().nth(1).is_none();
                (name != HUB || single).then_some(Form {
                    host: Host::Name(HUB),
                    port: "",
                    library: single,
                    reference,
                })
            }
            _ => None,
        };
        Some(Target { literal, hub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn err(text: &str) -> String {
        Pattern::parse(text).unwrap_err().to_string()
    }

    fn lit(s: &str) -> Segment {
        Segment::Literal(s.into())
    }

    #[test]
    fn short_patterns_are_docker_hub() {
        assert_eq!(p("nginx").path, vec![lit("library"), lit("nginx")]);
        assert_eq!(p("nginx").host, hub_host());
        assert_eq!(p("bitnami/redis").path, vec![lit("bitnami"), lit("redis")]);
        assert_eq!(p("*").path, vec![lit("library"), Segment::Star]);
    }

    #[test]
    fn hub_aliases_normalize() {
        for text in ["index.docker.io", "registry-1.docker.io", "DOCKER.IO", "docker.io:443"] {
            assert_eq!(p(text).host, hub_host(), "{text}");
            assert_eq!(p(text).port.as_ref(), "", "{text}");
        }
        // Another port is another server.
        assert_eq!(p("docker.io:5000").port.as_ref(), "5000");
        // An explicit Hub path is literal: the `bitnami` namespace.
        assert_eq!(p("docker.io/bitnami").path, vec![lit("bitnami")]);
    }

    #[test]
    fn domains_and_ports() {
        let pat = p("MyCorp.Registry.IO:05000/app");
        assert_eq!(
            pat.host,
            HostPattern::Labels(vec![lit("mycorp"), lit("registry"), lit("io")])
        );
        assert_eq!(pat.port.as_ref(), "5000");
        assert_eq!(p("host:0000").port.as_ref(), "0");
        assert_eq!(p("localhost").host, HostPattern::Labels(vec![lit("localhost")]));
        assert_eq!(p("[0:0::1]:5000").host, HostPattern::Ipv6("[::1]".into()));
        assert_eq!(p("*.gcr.io").host, HostPattern::Labels(vec![Segment::Star, lit("gcr"), lit("io")]));
        assert_eq!(p("Foo/bar").host, HostPattern::Labels(vec![lit("foo")]));
    }

    #[test]
    fn trailing_double_star_is_a_prefix() {
        assert_eq!(p("ghcr.io/mycorp/**"), p("ghcr.io/mycorp"));
        assert_eq!(p("docker.io/**"), p("docker.io"));
    }

    #[test]
    fn rejects_bad_patterns() {
        let cases = [
            ("", "empty pattern"),
            ("nginx:latest", "take no tag"),
            ("ghcr.io/app:v1", "names a tag"),
            ("ghcr.io/app@sha256:abcd", "names a digest"),
            ("ghcr.io//app", "empty path component"),
            ("ghcr.io/app/", "empty path component"),
            ("/app", "empty path component"),
            ("ghcr.io/App", "upper case"),
            ("Nginx", "upper case"),
            ("ghcr.io/**/x", "must be the last"),
            ("**.io", "may only end a path"),
            ("gh*.io", "whole domain label"),
            ("ghcr.io/app*", "whole path component"),
            ("ghcr..io", "empty domain label"),
            ("-ghcr.io/x", "invalid domain label"),
            ("ghcr.io/-x", "invalid path component"),
            ("ghcr.io/a_-b", "invalid path component"),
            ("host:/x", "invalid port"),
            ("host:*/x", "invalid port"),
            ("host:5a/x", "invalid port"),
            ("[fe80::1%eth0]/x", "invalid IPv6"),
            ("[::1", "invalid IPv6"),
            ("[zz::1]/x", "invalid IPv6"),
            ("[::1]x/y", "invalid IPv6"),
            ("ghcr.io /x", "whitespace"),
            ("ghcr.io/x\t", "whitespace"),
            ("ghcr.io/x\u{7}", "control"),
            ("ghcr.io/x\u{0}", "control"),
            ("gсr.io", "non-ASCII"),        // Cyrillic es
            ("ｇhcr.io", "non-ASCII"),        // fullwidth g
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text:?}: {got}");
        }
        let long = format!("ghcr.io/{}", "a/".repeat(300));
        assert!(err(long.trim_end_matches('/')).contains("longer than"));
    }

    #[test]
    fn path_component_grammar() {
        for ok in ["a", "a.b", "a_b", "a__b", "a---b", "0", "ab-c.d_e"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in ["", ".a", "a.", "a___b", "a..b", "a-", "-a", "a_", "A", "a.-b"] {
            assert!(!is_path_component(bad), "{bad}");
        }
    }

    #[test]
    fn ports_normalize() {
        assert_eq!(normalize_port("05000"), "5000");
        assert_eq!(normalize_port("0"), "0");
        assert_eq!(normalize_port("000"), "0");
        assert_eq!(normalize_port("443"), "");
        assert_eq!(normalize_port("0443"), "");
        assert_eq!(normalize_port("4430"), "4430");
    }

    #[test]
    fn targets() {
        let r = Reference::parse("registry-1.docker.io/nginx").unwrap();
        let t = Target::new(r).unwrap();
        let hub = t.hub.unwrap();
        assert_eq!(hub.components().collect::<Vec<_>>(), ["library", "nginx"]);
        let r = Reference::parse("nginx").unwrap();
        assert!(Target::new(r).unwrap().hub.is_none());
        // Port 443 is no port: the literal spelling already is canonical.
        let r = Reference::parse("docker.io:0443/bitnami/redis").unwrap();
        let t = Target::new(r).unwrap();
        assert!(t.hub.is_none());
        assert_eq!(t.literal.port, "");
        let r = Reference::parse("docker.io:0443/redis").unwrap();
        let hub = Target::new(r).unwrap().hub.unwrap();
        assert_eq!(hub.components().collect::<Vec<_>>(), ["library", "redis"]);
        let r = Reference::parse("my_registry.com/foo").unwrap();
        assert!(Target::new(r).is_none());
        let r = Reference::parse("[1:2]/foo").unwrap();
        assert!(Target::new(r).is_none());
        let r = Reference::parse("[0:0::1]:5000/foo").unwrap();
        match Target::new(r).unwrap().literal.host {
            Host::Ipv6(key) => assert_eq!(key.as_str(), "[::1]"),
            Host::Name(_) => panic!("not v6"),
        }
    }
}

//! The image side of matching: one parsed reference seen as patterns see
//! it ([`Target`]): host (IPv6 as an address), normalized port, path, and
//! Docker Hub's canonical spelling when the image names Hub another way.
//!
//! Built once per image from a borrowed reference, on the stack.

use std::fmt::{self, Write as _};
use std::net::Ipv6Addr;

use super::pattern::{HUB, HUB_ALIASES, OFFICIAL};
use crate::reference::{Components, Reference};

/// Splits `host[:port]` and `[v6][:port]`; the port is returned unchecked.
pub(crate) fn split_host_port(domain: &str) -> (&str, Option<&str>) {
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
    match domain.bytes().rposition(|b| b == b':') {
        Some(i) => (&domain[..i], Some(&domain[i + 1..])),
        None => (domain, None),
    }
}

/// The labels of a host name, right to left (`rsplit('.')` without the
/// generic searcher, which costs more than the short names it splits).
#[derive(Clone)]
pub(crate) struct RevLabels<'a> {
    rest: Option<&'a str>,
}

impl<'a> RevLabels<'a> {
    pub(crate) fn new(name: &'a str) -> RevLabels<'a> {
        RevLabels { rest: Some(name) }
    }
}

impl<'a> Iterator for RevLabels<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.bytes().rposition(|b| b == b'.') {
            Some(i) => {
                self.rest = Some(&rest[..i]);
                Some(&rest[i + 1..])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Leading zeros stripped (`05000` is `5000`); 443 is no port at all,
/// since every runtime reaches a registry named without a port over HTTPS
/// on 443: `evil.example:443` is the same server as `evil.example`.
pub(crate) fn normalize_port(port: &str) -> &str {
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
    pub(crate) fn new(addr: Ipv6Addr) -> Ipv6Key {
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
    /// An IPv6 literal (compared in canonical text form).
    Ipv6(Ipv6Addr),
}

/// One spelling of an image's repository to match patterns against.
#[derive(Clone, Copy)]
pub(crate) struct Form<'a> {
    pub(crate) host: Host<'a>,
    /// Normalized like pattern ports.
    pub(crate) port: &'a str,
    /// `library` is put in front of the reference's components.
    library: bool,
    reference: &'a Reference<'a>,
}

impl<'a> Form<'a> {
    /// The parsed image this form was made from.
    pub(crate) fn reference(&self) -> &'a Reference<'a> {
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
    pub(crate) fn new(reference: &'a Reference<'a>) -> Option<Target<'a>> {
        let domain = reference.domain();
        if domain.is_empty() {
            return None;
        }
        let (host, port) = split_host_port(domain);
        let port = port.map_or("", normalize_port);
        let host = match host.strip_prefix('[') {
            Some(inner) => Host::Ipv6(inner.strip_suffix(']')?.parse::<Ipv6Addr>().ok()?),
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
                (single || name.as_bytes() != HUB.as_bytes()).then_some(Form {
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

//! Container image references, parsed and normalized exactly as Kubernetes,
//! Docker and containerd do (`distribution/reference` v0.6.0,
//! `ParseNormalizedNamed`).
//!
//! The parser is a hand-written scanner over bytes, not a regular
//! expression: it borrows from the input, so it can run for every image of
//! every review. A successful parse allocates only when its thread's memo
//! of recent strings (`memo.rs`) takes a string longer than the one its
//! slot held before; error paths may allocate.
//!
//! This module knows nothing about policies and does no I/O.

mod error;
mod grammar;
mod memo;
#[cfg(test)]
mod tests;
pub(crate) mod words;

use std::fmt;

pub use error::{ParseErrorKind, ParseReferenceError};

/// The registry every short name refers to.
pub const DOCKER_HUB: &str = "docker.io";
/// Every host name that serves Docker Hub: an image or pattern naming any
/// of them names Docker Hub (`index.docker.io` is also rewritten by the
/// parser, as upstream does; the others are kept as written and judged as
/// Docker Hub by the policy). Compared case-insensitively.
pub const DOCKER_HUB_HOSTS: [&str; 4] = [
    DOCKER_HUB,
    LEGACY_DOCKER_HUB,
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Whether `host` (no port) is one of [`DOCKER_HUB_HOSTS`], in any case.
pub fn is_docker_hub_host(host: &str) -> bool {
    DOCKER_HUB_HOSTS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
}

/// The legacy spelling of [`DOCKER_HUB`], rewritten by normalization.
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library";
/// Longest repository path accepted (the domain is not counted, as in v0.6.0).
pub const MAX_PATH_LEN: usize = 255;

/// Whether `s` is one repository path component of the reference grammar
/// (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`), for checking registry patterns
/// against the same rule images obey.
pub fn is_path_component(s: &str) -> bool {
    !s.contains('/') && grammar::is_path(s)
}

/// Whether `s` is a tag of the reference grammar
/// (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`), for checking the tags a policy
/// names against the same rule images obey.
pub fn is_tag(s: &str) -> bool {
    grammar::is_tag(s)
}

/// Whether `s` is one domain label of the reference grammar
/// (`[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`).
pub fn is_domain_label(s: &str) -> bool {
    !s.contains('.') && grammar::is_domain_name(s)
}

/// A parsed, normalized image reference that borrows from its input.
///
/// `nginx:1.25` is `docker.io/library/nginx:1.25`: [`domain`](Self::domain)
/// is `docker.io` and the path's first component is `library`, although
/// neither was written. Two references are equal when they name the same
/// domain, path, tag and digest, however they were spelled.
#[derive(Clone, Copy, Debug)]
pub struct Reference<'a> {
    domain: &'a str,
    /// `true` when `library/` is implied in front of `path`.
    library: bool,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> Reference<'a> {
    /// Parses an image string the way the kubelet does
    /// (`ParseNormalizedNamed`): `docker.io` is the default domain,
    /// `index.docker.io` means `docker.io`, Docker Hub names without a
    /// namespace get `library/`, and no default tag is added.
    ///
    /// One refusal goes beyond upstream: `ALGO:<hex>` (`sha256:4f3c...`,
    /// full or shortened, any known digest algorithm) is
    /// [`ParseErrorKind::LocalImageId`], because runtimes resolve it as the
    /// ID of an image already on the node instead of pulling it.
    ///
    /// A string this thread parsed a moment ago is answered from a small
    /// memo of where its parts lie (see `memo.rs`): same input, same
    /// result, without running the grammar again.
    pub fn parse(input: &'a str) -> Result<Self, ParseReferenceError> {
        memo::parse(input)
    }

    /// [`Reference::parse`] without the memo.
    fn parse_uncached(input: &'a str) -> Result<Self, ParseReferenceError> {
        if grammar::is_identifier(input) {
            return Err(ParseReferenceError::with_detail(
                ParseErrorKind::ImageId,
                input,
            ));
        }
        if grammar::is_local_image_id(input) {
            return Err(ParseReferenceError::with_detail(
                ParseErrorKind::LocalImageId,
                input,
            ));
        }
        let split = split_docker_domain(input);
        check_remote_lowercase(&split)?;
        let parts = if split.prefixed {
            // The composed string is `docker.io/[library/]tail`: its domain
            // is Docker Hub and `tail` must be a complete `path[:tag][@digest]`.
            let Some((name, tag, digest)) = grammar::split_name_tag_digest(split.tail)
                .filter(|(name, _, _)| grammar::is_path(name))
            else {
                return Err(uppercase_or_invalid(&split));
            };
            grammar::Parts {
                domain: DOCKER_HUB,
                path: name,
                tag,
                digest,
            }
        } else {
            grammar::parse_strict(split.tail).map_err(|_| uppercase_or_invalid(&split))?
        };
        let reference = Reference {
            domain: parts.domain,
            library: split.library,
            path: parts.path,
            tag: parts.tag,
            digest: parts.digest,
        };
        if reference.path_len() > MAX_PATH_LEN {
            return Err(ParseReferenceError::new(ParseErrorKind::NameTooLong));
        }
        if let Some(digest) = reference.digest {
            grammar::validate_digest(digest)?;
        }
        Ok(reference)
    }

    /// The registry, as written (case kept): `docker.io` for Docker Hub.
    ///
    /// Empty only in one upstream quirk: when the first component was taken
    /// for a domain by Docker's rules but is not a valid domain
    /// (`my_registry.com/foo`), the whole name is read as a path.
    pub fn domain(&self) -> &'a str {
        self.domain
    }

    /// The repository path, with an implied `library/` included.
    pub fn path(&self) -> Path<'a> {
        Path {
            library: self.library,
            rest: self.path,
        }
    }

    /// The path's components, `library` included when implied.
    pub fn components(&self) -> Components<'a> {
        self.path().components()
    }

    /// The tag, if one was written (no `latest` is implied here).
    pub fn tag(&self) -> Option<&'a str> {
        self.tag
    }

    /// The digest (`sha256:<hex>`), if one was written.
    pub fn digest(&self) -> Option<&'a str> {
        self.digest
    }

    /// The short form Docker prints (`FamiliarString`): `nginx:1.25` for
    /// `docker.io/library/nginx:1.25`.
    pub fn familiar(&self) -> Familiar<'_, 'a> {
        Familiar(self)
    }

    /// The reference a runtime pulls (`ParseDockerRef`): `:latest` added
    /// when neither tag nor digest is given, the tag dropped when a digest
    /// is given.
    pub fn docker_ref(&self) -> DockerRef<'_, 'a> {
        DockerRef(self)
    }

    fn path_len(&self) -> usize {
        self.path.len()
            + if self.library {
                OFFICIAL_PREFIX.len() + 1
            } else {
                0
            }
    }

    fn write_name(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.domain.is_empty() {
            f.write_str(self.domain)?;
            f.write_str("/")?;
        }
        fmt::Display::fmt(&self.path(), f)
    }
}

impl PartialEq for Reference<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.domain == other.domain
            && self.tag == other.tag
            && self.digest == other.digest
            && self.components().eq(other.components())
    }
}

impl Eq for Reference<'_> {}

/// The normalized form (`String()` upstream):
/// `docker.io/library/nginx:1.25@sha256:...`.
impl fmt::Display for Reference<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_name(f)?;
        if let Some(tag) = self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A repository path, with an implied `library/` in front when there is one.
#[derive(Clone, Copy, Debug)]
pub struct Path<'a> {
    library: bool,
    rest: &'a str,
}

impl<'a> Path<'a> {
    /// The components of the path, in order.
    pub fn components(&self) -> Components<'a> {
        Components {
            library: self.library,
            rest: Some(self.rest),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.library {
            f.write_str(OFFICIAL_PREFIX)?;
            f.write_str("/")?;
        }
        f.write_str(self.rest)
    }
}

/// Iterator over the components of a [`Path`].
#[derive(Clone, Debug)]
pub struct Components<'a> {
    library: bool,
    /// What is left to split on `/` (`None` when done).
    rest: Option<&'a str>,
}

impl<'a> Iterator for Components<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.library {
            self.library = false;
            return Some(OFFICIAL_PREFIX);
        }
        // `split('/')` by bytes: paths are short, and this runs for every
        // pattern walk of every image.
        let rest = self.rest?;
        match grammar::find_byte(rest, b'/') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// Display adapter for [`Reference::familiar`].
#[derive(Clone, Copy, Debug)]
pub struct Familiar<'r, 'a>(&'r Reference<'a>);

impl fmt::Display for Familiar<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        if r.domain == DOCKER_HUB {
            let short = if r.library {
                r.path
            } else {
                match r.path.strip_prefix("library/") {
                    Some(rest) if !rest.contains('/') => rest,
                    _ => r.path,
                }
            };
            f.write_str(short)?;
        } else {
            r.write_name(f)?;
        }
        if let Some(tag) = r.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = r.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Display adapter for [`Reference::docker_ref`].
#[derive(Clone, Copy, Debug)]
pub struct DockerRef<'r, 'a>(&'r Reference<'a>);

impl fmt::Display for DockerRef<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        r.write_name(f)?;
        match (r.tag, r.digest) {
            (_, Some(digest)) => write!(f, "@{digest}"),
            (Some(tag), None) => write!(f, ":{tag}"),
            (None, None) => f.write_str(":latest"),
        }
    }
}

/// What `splitDockerDomain` decided, kept as borrowed pieces: the string
/// upstream parses next is `docker.io/` + (`library/`)? + `tail` when
/// `prefixed`, or exactly `tail` (the whole input) otherwise.
struct Split<'a> {
    prefixed: bool,
    library: bool,
    /// What follows the domain in the original input (after `library/`).
    remainder: &'a str,
    tail: &'a str,
}

fn split_docker_domain(input: &str) -> Split<'_> {
    let (domain_is_hub, remainder, prefixed) = match grammar::find_byte(input, b'/') {
        Some(i) => {
            let first = &input[..i];
            let is_domain = first
                .bytes()
                .any(|b| b == b'.' || b == b':' || b.is_ascii_uppercase())
                || first == "localhost";
            if !is_domain {
                (true, input, true)
            } else if first == LEGACY_DOCKER_HUB {
                (true, &input[i + 1..], true)
            } else {
                (first == DOCKER_HUB, &input[i + 1..], false)
            }
        }
        None => (true, input, true),
    };
    let library = domain_is_hub && grammar::find_byte(remainder, b'/').is_none();
    Split {
        prefixed,
        library,
        remainder,
        tail: if prefixed { remainder } else { input },
    }
}

/// Upstream refuses a repository part with upper case before it parses, and
/// names that part (with `library/`) in the message.
fn check_remote_lowercase(split: &Split<'_>) -> Result<(), ParseReferenceError> {
    let end = grammar::find_byte(split.remainder, b':').unwrap_or(split.remainder.len());
    let remote = &split.remainder[..end];
    if !remote.bytes().any(|b| b.is_ascii_uppercase()) {
        return Ok(());
    }
    let shown = if split.library {
        format!("{OFFICIAL_PREFIX}/{remote}")
    } else {
        remote.to_owned()
    };
    Err(ParseReferenceError::with_detail(
        ParseErrorKind::NotLowercase,
        &shown,
    ))
}

/// `Parse` tells "must be lowercase" from "invalid format" by trying the
/// lower-cased string again. Only reached on the error path.
fn uppercase_or_invalid(split: &Split<'_>) -> ParseReferenceError {
    let mut composed = String::new();
    if split.prefixed {
        composed.push_str(DOCKER_HUB);
        composed.push('/');
        if split.library {
            composed.push_str(OFFICIAL_PREFIX);
            composed.push('/');
        }
    }
    composed.push_str(split.tail);
    composed.make_ascii_lowercase();
    if grammar::parse_strict(&composed).is_ok() {
        ParseReferenceError::new(ParseErrorKind::ParseNotLowercase)
    } else {
        ParseReferenceError::new(ParseErrorKind::InvalidFormat)
    }
}

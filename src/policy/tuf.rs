//! Where a rule's Sigstore trusted root may be refreshed from: a TUF
//! repository (`verify[].tuf`), as Sigstore publishes its roots. The policy
//! core only describes the source; the server fetches and verifies it
//! (`verify::tuf`) and hands the verified `trusted_root.json` back to the
//! next compile through [`SideFiles::tuf_target`](super::SideFiles::tuf_target).
//! Until a refresh has succeeded, the rule uses its `trustedRoot` file, or
//! the embedded public-good root: a repository that cannot be reached never
//! stops the server from starting or answering.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

/// How often a TUF source is refreshed when the policy does not say.
pub const DEFAULT_TUF_REFRESH: Duration = Duration::from_secs(24 * 3600);
/// The target fetched when the policy does not name one.
pub const DEFAULT_TUF_TARGET: &str = "trusted_root.json";
/// The Sigstore public-good TUF repository.
pub const PUBLIC_GOOD_TUF_URL: &str = "https://tuf-repo-cdn.sigstore.dev";
/// Its TUF root (version 16, as `sigstore-trust-root` 0.15.1 ships it),
/// trusted first when a policy names [`PUBLIC_GOOD_TUF_URL`] without
/// `root`. The tests check that version 15 of the published chain signs it.
pub const SIGSTORE_TUF_ROOT: &str = include_str!("sigstore_tuf_root.json");

/// Whether `url` is the public-good repository (as [`normalize_url`]
/// writes it).
pub(super) fn is_public_good(url: &str) -> bool {
    normalize_url(url) == PUBLIC_GOOD_TUF_URL
}

/// One spelling per repository: scheme and host in lower case, the
/// scheme's default port and a trailing slash dropped. A text that is not
/// an `http(s)` URL is kept as written (the compile refuses it).
fn normalize_url(url: &str) -> String {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return url.to_owned();
    };
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return url.to_owned();
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return url.to_owned();
    }
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return url.to_owned(),
    };
    let port = uri
        .port_u16()
        .filter(|&p| p != default)
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let host = host.to_ascii_lowercase();
    let path = uri.path().trim_end_matches('/');
    format!("{scheme}://{host}{port}{path}")
}

/// One TUF repository a rule's trusted root is refreshed from.
#[derive(Clone, PartialEq, Eq)]
pub struct TufSource {
    url: String,
    root: Arc<[u8]>,
    target: String,
    refresh: Duration,
    id: [u8; 32],
}

impl TufSource {
    /// A source: the repository's base URL (metadata at `URL/<role>.json`,
    /// targets under `URL/targets/`), the TUF `root.json` trusted first,
    /// the target to fetch and how often.
    pub fn new(url: &str, root: &[u8], target: &str, refresh: Duration) -> TufSource {
        let url = normalize_url(url);
        let mut h = Sha256::new();
        for part in [url.as_bytes(), root, target.as_bytes()] {
            super::keyless::field(&mut h, part);
        }
        TufSource {
            url,
            root: root.into(),
            target: target.to_owned(),
            refresh,
            id: h.finalize().into(),
        }
    }

    /// The repository's base URL, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TUF `root.json` the first refresh starts from.
    pub fn root(&self) -> &[u8] {
        &self.root
    }

    /// The target path (`trusted_root.json` unless the policy says).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The time between successful refreshes.
    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// sha256 over URL, root and target: the same repository in two rules
    /// (or two generations of the policy) is one source.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }
}

impl fmt::Debug for TufSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TufSource")
            .field("url", &self.url)
            .field("target", &self.target)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

/// The repository URL as the policy wrote it, checked: `http` or `https`,
/// a host, no query or fragment. TUF metadata is signed, so plain HTTP
/// cannot change what is trusted (it can only withhold updates, which
/// metadata expiry bounds).
pub(super) fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}): give http(s)://host[:port]/path"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("the URL must start with https:// or http://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err("the URL must not carry credentials (user@host)".into());
    }
    if uri.query().is_some() || url.contains('#') {
        return Err("the URL must not have a query or fragment".into());
    }
    Ok(())
}

/// A target path as the policy wrote it: relative, `/`-separated, no `.`
/// or `..` segments, printable ASCII without `%`, `?` or `#`.
pub(super) fn check_target(target: &str) -> Result<(), String> {
    let bad_char = target
        .bytes()
        .any(|b| !b.is_ascii_graphic() || matches!(b, b'%' | b'?' | b'#' | b'\\'));
    let bad_segment = target
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..");
    if target.is_empty() || bad_char || bad_segment {
        return Err(format!(
            "{target:?} is not a target path: give a relative path such as {DEFAULT_TUF_TARGET}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for good in [
            "https://tuf-repo-cdn.sigstore.dev",
            "http://127.0.0.1:8080/",
            "https://[::1]:8443/repo/",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "tuf-repo-cdn.sigstore.dev",
            "ftp://a/",
            "file:///etc/tuf",
            "https://a/?x=1",
            "https://a/#f",
            "https:///path",
            "https://user:secret@tuf.example/",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_public_good_repository_is_recognised() {
        assert!(is_public_good("https://tuf-repo-cdn.sigstore.dev"));
        assert!(is_public_good("https://TUF-repo-cdn.sigstore.dev/"));
        assert!(!is_public_good("http://tuf-repo-cdn.sigstore.dev"));
        assert!(!is_public_good(
            "https://tuf-repo-cdn.sigstore.dev.evil.example"
        ));
        assert!(!is_public_good("https://tuf-repo-cdn.sigstore.dev/mirror"));
        assert!(is_public_good("HTTPS://tuf-repo-cdn.sigstore.dev:443/"));
        assert!(!is_public_good("https://tuf-repo-cdn.sigstore.dev:8443"));
        assert!(!is_public_good("https://user@tuf-repo-cdn.sigstore.dev"));
    }

    #[test]
    fn one_spelling_per_repository() {
        let a = TufSource::new(
            "HTTPS://Tuf.Example:443/Repo/",
            b"{}",
            "t",
            DEFAULT_TUF_REFRESH,
        );
        let b = TufSource::new("https://tuf.example/Repo", b"{}", "t", DEFAULT_TUF_REFRESH);
        assert_eq!(a.url(), "https://tuf.example/Repo");
        assert_eq!(
            a.id(),
            b.id(),
            "case of scheme and host, default port, slash"
        );
        let c = TufSource::new("http://[::1]:8080/", b"{}", "t", DEFAULT_TUF_REFRESH);
        assert_eq!(c.url(), "http://[::1]:8080");
        let d = TufSource::new("https://tuf.example/repo", b"{}", "t", DEFAULT_TUF_REFRESH);
        assert_ne!(b.id(), d.id(), "paths are case-sensitive");
    }

    #[test]
    fn targets() {
        for good in ["trusted_root.json", "a/b.json", "signing_config.v0.2.json"] {
            assert_eq!(check_target(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/abs", "a//b", "../x", "a/./b", "a b", "a%2e", "a?b", "a#b", "a\\b", "é",
        ] {
            assert!(check_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_source_per_url_root_and_target() {
        let a = TufSource::new("http://h/r/", b"{}", "t", DEFAULT_TUF_REFRESH);
        let b = TufSource::new("http://h/r", b"{}", "t", Duration::from_secs(1));
        assert_eq!(a.id(), b.id(), "trailing slash and interval do not matter");
        assert_eq!(a.url(), "http://h/r");
        let c = TufSource::new("http://h/r", b"{} ", "t", DEFAULT_TUF_REFRESH);
        let d = TufSource::new("http://h/r", b"{}", "u", DEFAULT_TUF_REFRESH);
        assert_ne!(a.id(), c.id());
        assert_ne!(a.id(), d.id());
        // Length-prefixed: moving bytes between fields changes the id.
        let e = TufSource::new("http://h/r", b"{}t", "", DEFAULT_TUF_REFRESH);
        assert_ne!(d.id(), e.id());
    }
}

//! Where a request goes: the registry's address for a domain (Docker Hub's
//! API host, plain HTTP only for insecure registries), absolute and
//! redirected URLs kept on the same scheme rules, query encoding.

use super::transport::Destination;
use super::{Registry, RegistryError, RegistryErrorKind};

impl Registry {
    pub(super) fn is_insecure(&self, authority: &str) -> bool {
        self.config
            .insecure
            .iter()
            .any(|h| h.eq_ignore_ascii_case(authority))
    }

    pub(super) fn target(&self, domain: &str, path: &str) -> Result<Destination, RegistryError> {
        // Every Docker Hub spelling (without a port) is served by the one
        // registry host, whose credentials are stored under `docker.io`.
        let authority = if crate::reference::is_docker_hub_host(domain) {
            "registry-1.docker.io".to_owned()
        } else {
            domain.to_owned()
        };
        if authority.is_empty() {
            return Err(RegistryError::new(
                RegistryErrorKind::Malformed,
                "image without a registry",
            ));
        }
        Ok(Destination {
            https: !self.is_insecure(&authority),
            authority,
            path: path.to_owned(),
        })
    }

    pub(super) fn absolute(&self, uri: &http::Uri) -> Result<Destination, RegistryError> {
        let authority = uri
            .authority()
            .ok_or_else(|| RegistryError::new(RegistryErrorKind::Malformed, "URL without a host"))?
            .as_str()
            .to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") if self.is_insecure(&authority) => false,
            _ => {
                return Err(RegistryError::new(
                    RegistryErrorKind::Protocol,
                    "refusing a plain-HTTP URL",
                ));
            }
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        Ok(Destination {
            https,
            authority,
            path,
        })
    }

    pub(super) fn redirect(
        &self,
        from: &Destination,
        location: &str,
    ) -> Result<Destination, RegistryError> {
        redirect(from, location, |authority| self.is_insecure(authority))
            .map_err(|why| RegistryError::new(RegistryErrorKind::Protocol, why))
    }
}

/// Where a redirect from `from` to `location` goes: an absolute `http(s)`
/// URL, plain HTTP only to an authority `plain_http` allows, or an
/// absolute path on the same host and scheme.
pub(crate) fn redirect(
    from: &Destination,
    location: &str,
    plain_http: impl Fn(&str) -> bool,
) -> Result<Destination, &'static str> {
    let uri: http::Uri = location.parse().map_err(|_| "bad redirect location")?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let Some(authority) = uri.authority() else {
        if !path.starts_with('/') {
            return Err("relative redirect location");
        }
        return Ok(Destination {
            path,
            ..from.clone()
        });
    };
    let authority = authority.as_str().to_owned();
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") if plain_http(&authority) => false,
        _ => return Err("refusing a plain-HTTP URL"),
    };
    Ok(Destination {
        https,
        authority,
        path,
    })
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
pub(super) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

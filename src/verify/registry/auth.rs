//! Registry authentication: `WWW-Authenticate` challenges (RFC 6750 §3
//! syntax), bearer tokens from the registry's token service, and basic
//! credentials read from a `kubernetes.io/dockerconfigjson` file.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// `Bearer realm=...,service=...,scope=...`.
    Bearer {
        /// Token service URL.
        realm: String,
        /// `service` parameter, if any.
        service: Option<String>,
        /// `scope` parameter, if any.
        scope: Option<String>,
    },
    /// `Basic realm=...`: send HTTP basic credentials.
    Basic,
}

/// Parses one challenge; quoted values may hold commas and escapes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest)?;
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

fn parse_params(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.push(chars.next()?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_owned();
        }
        if key.is_empty() {
            return None;
        }
        out.insert(key, value);
    }
}

/// The token service's answer.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenResponse {
    /// The token (Docker).
    #[serde(default)]
    pub(crate) token: Option<String>,
    /// The same token (OAuth2 name).
    #[serde(default)]
    pub(crate) access_token: Option<String>,
    /// Lifetime in seconds (default 60).
    #[serde(default)]
    pub(crate) expires_in: Option<u64>,
}

/// Basic credentials per registry host, from a dockerconfigjson file.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, (String, String)>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Why a dockerconfigjson could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid dockerconfigjson: {0}")]
pub struct CredentialsError(String);

impl Credentials {
    /// Reads `{"auths": {"host": {"auth": base64("user:pass")}}}` (or
    /// `username`/`password`). Keys may be URLs; `index.docker.io` and
    /// `registry-1.docker.io` are Docker Hub.
    pub fn from_dockerconfigjson(text: &str) -> Result<Credentials, CredentialsError> {
        let cfg: DockerConfig =
            serde_json::from_str(text).map_err(|e| CredentialsError(e.to_string()))?;
        let mut by_host = BTreeMap::new();
        for (key, entry) in cfg.auths {
            let pair = match (entry.auth, entry.username, entry.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let raw = STANDARD
                        .decode(auth.trim())
                        .map_err(|_| CredentialsError(format!("auth of {key:?} is not base64")))?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| CredentialsError(format!("auth of {key:?} is not UTF-8")))?;
                    let (u, p) = text.split_once(':').ok_or_else(|| {
                        CredentialsError(format!("auth of {key:?} is not user:password"))
                    })?;
                    (u.to_owned(), p.to_owned())
                }
                (_, Some(u), Some(p)) => (u, p),
                _ => continue,
            };
            by_host.insert(normalize_host(&key), pair);
        }
        Ok(Credentials { by_host })
    }

    /// The `Authorization: Basic ...` value for `host`, if configured.
    pub fn basic(&self, host: &str) -> Option<String> {
        let (u, p) = self.by_host.get(&normalize_host(host))?;
        Some(format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))))
    }
}

fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if crate::reference::is_docker_hub_host(&host) {
        crate::reference::DOCKER_HUB.to_owned()
    } else {
        host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge("Negotiate"), None);
        assert!(
            matches!(parse_challenge(r#"bearer realm="a\"b""#), Some(Challenge::Bearer { realm, .. }) if realm == "a\"b")
        );
    }

    #[test]
    fn dockerconfigjson() {
        let text = r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"},"127.0.0.1:5000":{"username":"a","password":"b:c"},"x":{}}}"#;
        let c = Credentials::from_dockerconfigjson(text).unwrap();
        assert_eq!(c.basic("docker.io").as_deref(), Some("Basic dTpw"));
        assert_eq!(
            c.basic("127.0.0.1:5000"),
            Some(format!("Basic {}", STANDARD.encode("a:b:c")))
        );
        assert_eq!(c.basic("x"), None);
        assert!(Credentials::from_dockerconfigjson(r#"{"auths":{"h":{"auth":"!!"}}}"#).is_err());
        assert!(Credentials::from_dockerconfigjson("[").is_err());
    }
}

//! A small OCI distribution client for verification: manifests by tag and
//! digest, blobs, referrers (with the tag-schema fallback), bearer and
//! basic auth, bounded retries on 429/503, a timeout on every call and a
//! size limit on every body.
//!
//! Built on hyper's HTTP/1.1 client connection and tokio-rustls (already
//! the server's stack) rather than a registry crate: the verifier needs
//! per-call deadlines, exact byte limits, `Retry-After` handling and the
//! raw manifest bytes for digest checks, and a full client would bring a
//! second HTTP and TLS stack. Plain HTTP is used only for registries listed
//! as insecure. Every manifest and blob fetched by digest is checked
//! against that digest before anything reads it.

mod auth;
mod error;
mod manifest;
mod roots;
mod transport;

pub use auth::{Challenge, Credentials, CredentialsError, parse_challenge};
pub use error::{RegistryError, RegistryErrorKind};
pub use manifest::{
    ACCEPT, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Manifest, OCI_INDEX, OCI_MANIFEST,
};
pub use roots::{CaBundle, CaBundleError};

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use dashmap::DashMap;
use http::{Method, StatusCode, header};

use super::digest::Digest;
use transport::{Reply, Target, Transport};

/// Limits and settings of a [`Registry`] client.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`, as in image references) reached over
    /// plain HTTP; every other one over HTTPS.
    pub insecure: Vec<String>,
    /// Basic credentials per registry.
    pub credentials: Credentials,
    /// Private CAs trusted for registry TLS, in addition to the Mozilla
    /// root set.
    pub ca: CaBundle,
    /// Timeout of one HTTP exchange (connect to last body byte).
    pub call_timeout: Duration,
    /// Largest manifest or index read (distribution's own limit is 4 MiB).
    pub max_manifest_bytes: usize,
    /// Largest blob read (signature payloads, envelopes, bundles).
    pub max_blob_bytes: usize,
    /// Retries after 429/503 (each waits `Retry-After`, at most
    /// `max_retry_wait`).
    pub max_retries: u32,
    /// Longest single wait before a retry.
    pub max_retry_wait: Duration,
    /// Pages of a referrers listing followed.
    pub max_referrer_pages: usize,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            insecure: Vec::new(),
            credentials: Credentials::default(),
            ca: CaBundle::default(),
            call_timeout: Duration::from_secs(3),
            max_manifest_bytes: 4 << 20,
            max_blob_bytes: 8 << 20,
            max_retries: 2,
            max_retry_wait: Duration::from_secs(2),
            max_referrer_pages: 4,
        }
    }
}

/// How long basic credentials, once asked for, are sent up front.
const BASIC_REUSE: Duration = Duration::from_secs(600);

/// What a registry request was for (a closed set: metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `HEAD` a manifest by tag.
    Resolve,
    /// `GET` a manifest or index.
    Manifest,
    /// `GET` a blob.
    Blob,
    /// `GET` the referrers API.
    Referrers,
    /// `GET` a token from the token service.
    Token,
}

impl Operation {
    /// Every operation, for pre-registering metric series.
    pub const ALL: [Operation; 5] = [
        Operation::Resolve,
        Operation::Manifest,
        Operation::Blob,
        Operation::Referrers,
        Operation::Token,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Resolve => "resolve",
            Operation::Manifest => "manifest",
            Operation::Blob => "blob",
            Operation::Referrers => "referrers",
            Operation::Token => "token",
        }
    }
}

/// Called once per HTTP exchange: operation, status (`None` when no answer
/// came) and duration.
pub type Observe = Arc<dyn Fn(Operation, Option<u16>, Duration) + Send + Sync>;

/// A repository at a registry, as named by an image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repository {
    /// The reference's domain (`docker.io`, `127.0.0.1:5000`, ...).
    pub domain: String,
    /// The repository path (`library/nginx`).
    pub path: String,
}

/// A fetched manifest: its verified digest, media type and exact bytes.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// sha256 of `bytes`.
    pub digest: Digest,
    /// `Content-Type` without parameters.
    pub media_type: Option<String>,
    /// The body exactly as received.
    pub bytes: Bytes,
}

/// The registry client (cheap to share behind an `Arc`).
pub struct Registry {
    config: RegistryConfig,
    transport: Transport,
    tokens: DashMap<String, (String, Instant)>,
    observe: Option<Observe>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// A client with `config`; HTTPS trusts the Mozilla root set and the
    /// configured private CAs.
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            transport: Transport::new(&config.ca),
            config,
            tokens: DashMap::new(),
            observe: None,
        }
    }

    /// Reports every exchange to `observe` (metrics).
    pub fn with_observer(mut self, observe: Observe) -> Registry {
        self.observe = Some(observe);
        self
    }

    /// The client's settings.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Resolves a tag to the digest of what it points to (`None`: no such
    /// tag). Uses `HEAD` and `Docker-Content-Digest`; without that header
    /// the manifest is fetched and hashed.
    pub async fn resolve(
        &self,
        repo: &Repository,
        tag: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let path = format!("/v2/{}/manifests/{}", repo.path, tag);
        let reply = self
            .call(
                Operation::Resolve,
                repo,
                Method::HEAD,
                &path,
                Some(ACCEPT),
                0,
            )
            .await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(status_error(s)),
        }
        if let Some(d) = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            return Digest::parse(d.trim())
                .map(Some)
                .map_err(|e| RegistryError::new(RegistryErrorKind::Malformed, e.to_string()));
        }
        Ok(self.manifest(repo, tag, None).await?.map(|f| f.digest))
    }

    /// Fetches a manifest or index by tag or digest (`None`: not found).
    /// With `expect`, the body's sha256 must equal it; by tag, an announced
    /// `Docker-Content-Digest` must match the body.
    pub async fn manifest(
        &self,
        repo: &Repository,
        reference: &str,
        expect: Option<Digest>,
    ) -> Result<Option<Fetched>, RegistryError> {
        let path = format!("/v2/{}/manifests/{}", repo.path, reference);
        let limit = self.config.max_manifest_bytes;
        let reply = self
            .call(
                Operation::Manifest,
                repo,
                Method::GET,
                &path,
                Some(ACCEPT),
                limit,
            )
            .await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(status_error(s)),
        }
        let digest = Digest::of(&reply.body);
        let announced = reply
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        if expect.is_some_and(|e| e != digest) || announced.is_some_and(|a| a != digest) {
            return Err(RegistryError::new(
                RegistryErrorKind::DigestMismatch,
                format!("manifest {reference}"),
            ));
        }
        let media_type = reply
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        Ok(Some(Fetched {
            digest,
            media_type,
            bytes: reply.body,
        }))
    }

    /// Fetches a blob by digest, at most `limit` bytes (and at most the
    /// client's blob limit); its sha256 is checked (`None`: not found).
    pub async fn blob(
        &self,
        repo: &Repository,
        digest: Digest,
        limit: usize,
    ) -> Result<Option<Bytes>, RegistryError> {
        let path = format!("/v2/{}/blobs/{}", repo.path, digest);
        let limit = limit.min(self.config.max_blob_bytes);
        let reply = self
            .call(Operation::Blob, repo, Method::GET, &path, None, limit)
            .await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(None),
            s => return Err(status_error(s)),
        }
        if Digest::of(&reply.body) != digest {
            return Err(RegistryError::new(
                RegistryErrorKind::DigestMismatch,
                format!("blob {digest}"),
            ));
        }
        Ok(Some(reply.body))
    }

    /// The referrers of `digest`: the OCI 1.1 API, or, where the registry
    /// has none (404), the index at the `sha256-<hex>` fallback tag.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: Digest,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let limit = self.config.max_manifest_bytes;
        let mut path = format!("/v2/{}/referrers/{}", repo.path, digest);
        let mut out = Vec::new();
        for page in 0..self.config.max_referrer_pages {
            let reply = self
                .call(
                    Operation::Referrers,
                    repo,
                    Method::GET,
                    &path,
                    Some(OCI_INDEX),
                    limit,
                )
                .await?;
            match reply.status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if page == 0 => {
                    return self.referrers_tag(repo, digest).await;
                }
                s => return Err(status_error(s)),
            }
            let index = Manifest::parse(&reply.body, None).ok_or_else(|| {
                RegistryError::new(RegistryErrorKind::Malformed, "referrers index")
            })?;
            out.extend(index.manifests);
            match next_link(&reply.headers) {
                Some(next) => path = next,
                None => break,
            }
        }
        Ok(out)
    }

    async fn referrers_tag(
        &self,
        repo: &Repository,
        digest: Digest,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let Some(fetched) = self.manifest(repo, &digest.tag(), None).await? else {
            return Ok(Vec::new());
        };
        match Manifest::parse(&fetched.bytes, fetched.media_type.as_deref()) {
            Some(index)
                if fetched.media_type.as_deref() == Some(OCI_INDEX)
                    || !index.manifests.is_empty() =>
            {
                Ok(index.manifests)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// One logical request: auth challenges answered, redirects followed
    /// (without credentials to another host), 429/503 retried.
    async fn call(
        &self,
        op: Operation,
        repo: &Repository,
        method: Method,
        path: &str,
        accept: Option<&str>,
        limit: usize,
    ) -> Result<Reply, RegistryError> {
        let origin = self.target(&repo.domain, path)?;
        let token_key = format!("{}/{}", repo.domain.to_ascii_lowercase(), repo.path);
        let mut target = origin.clone();
        let mut authorization = self.cached_token(&token_key);
        let (mut authed, mut retries, mut redirects) = (false, 0u32, 0u32);
        loop {
            let auth = authorization
                .as_deref()
                .filter(|_| target.authority == origin.authority);
            let reply = self
                .exchange(op, &method, &target, accept, auth, limit)
                .await?;
            match reply.status {
                StatusCode::UNAUTHORIZED if !authed => {
                    authed = true;
                    authorization = Some(self.authenticate(repo, &reply, &token_key).await?);
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(RegistryError::new(
                        RegistryErrorKind::Auth,
                        format!("{} refused", reply.status),
                    ));
                }
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    if retries >= self.config.max_retries {
                        return Err(RegistryError::new(
                            RegistryErrorKind::RateLimited,
                            reply.status.to_string(),
                        ));
                    }
                    let wait = retry_after(&reply.headers)
                        .unwrap_or(Duration::from_millis(100 << retries))
                        .min(self.config.max_retry_wait);
                    retries += 1;
                    tokio::time::sleep(wait).await;
                }
                s if s.is_redirection() && s != StatusCode::NOT_MODIFIED => {
                    redirects += 1;
                    let location = reply
                        .headers
                        .get(header::LOCATION)
                        .and_then(|v| v.to_str().ok());
                    target = match (redirects <= 3, location) {
                        (true, Some(loc)) => self.redirect(&target, loc)?,
                        _ => {
                            return Err(RegistryError::new(
                                RegistryErrorKind::Protocol,
                                "redirect loop or no location",
                            ));
                        }
                    };
                }
                _ => return Ok(reply),
            }
        }
    }

    async fn exchange(
        &self,
        op: Operation,
        method: &Method,
        target: &Target,
        accept: Option<&str>,
        authorization: Option<&str>,
        limit: usize,
    ) -> Result<Reply, RegistryError> {
        let start = Instant::now();
        let result = tokio::time::timeout(
            self.config.call_timeout,
            self.transport
                .send(method, target, accept, authorization, limit),
        )
        .await
        .unwrap_or_else(|_| {
            Err(RegistryError::new(
                RegistryErrorKind::Timeout,
                target.authority.clone(),
            ))
        });
        if let Some(observe) = &self.observe {
            observe(
                op,
                result.as_ref().ok().map(|r| r.status.as_u16()),
                start.elapsed(),
            );
        }
        result
    }

    fn cached_token(&self, key: &str) -> Option<String> {
        let entry = self.tokens.get(key)?;
        (entry.1 > Instant::now()).then(|| entry.0.clone())
    }

    async fn authenticate(
        &self,
        repo: &Repository,
        reply: &Reply,
        key: &str,
    ) -> Result<String, RegistryError> {
        let basic = self.config.credentials.basic(&repo.domain);
        let challenge = reply
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_challenge)
            .ok_or_else(|| {
                RegistryError::new(RegistryErrorKind::Auth, "401 without a usable challenge")
            })?;
        let (realm, service) = match challenge {
            Challenge::Basic => {
                let basic = basic.ok_or_else(|| {
                    RegistryError::new(RegistryErrorKind::Auth, "basic auth asked, no credentials")
                })?;
                // Sent up front from now on (this registry, this
                // repository): one round trip per call instead of two.
                self.tokens.insert(
                    key.to_owned(),
                    (basic.clone(), Instant::now() + BASIC_REUSE),
                );
                return Ok(basic);
            }
            Challenge::Bearer { realm, service, .. } => (realm, service),
        };
        let mut url = realm.clone();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some(service) = service {
            url.push_str(&format!("service={}&", encode(&service)));
        }
        url.push_str(&format!(
            "scope={}",
            encode(&format!("repository:{}:pull", repo.path))
        ));
        let realm_uri: http::Uri = url
            .parse()
            .map_err(|_| RegistryError::new(RegistryErrorKind::Auth, "token realm is not a URL"))?;
        let target = self.absolute(&realm_uri)?;
        let reply = self
            .exchange(
                Operation::Token,
                &Method::GET,
                &target,
                None,
                basic.as_deref(),
                64 << 10,
            )
            .await?;
        if reply.status != StatusCode::OK {
            return Err(RegistryError::new(
                RegistryErrorKind::Auth,
                format!("token service answered {}", reply.status),
            ));
        }
        let token: auth::TokenResponse = serde_json::from_slice(&reply.body).map_err(|_| {
            RegistryError::new(RegistryErrorKind::Auth, "token response is not JSON")
        })?;
        let value = token
            .token
            .or(token.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                RegistryError::new(RegistryErrorKind::Auth, "token response without a token")
            })?;
        let bearer = format!("Bearer {value}");
        let ttl = Duration::from_secs(token.expires_in.unwrap_or(60).clamp(10, 3600) - 5);
        self.tokens
            .insert(key.to_owned(), (bearer.clone(), Instant::now() + ttl));
        Ok(bearer)
    }

    fn is_insecure(&self, authority: &str) -> bool {
        self.config
            .insecure
            .iter()
            .any(|h| h.eq_ignore_ascii_case(authority))
    }

    fn target(&self, domain: &str, path: &str) -> Result<Target, RegistryError> {
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
        Ok(Target {
            https: !self.is_insecure(&authority),
            authority,
            path: path.to_owned(),
        })
    }

    fn absolute(&self, uri: &http::Uri) -> Result<Target, RegistryError> {
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
        Ok(Target {
            https,
            authority,
            path,
        })
    }

    fn redirect(&self, from: &Target, location: &str) -> Result<Target, RegistryError> {
        let uri: http::Uri = location.parse().map_err(|_| {
            RegistryError::new(RegistryErrorKind::Protocol, "bad redirect location")
        })?;
        if uri.authority().is_some() {
            return self.absolute(&uri);
        }
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if !path.starts_with('/') {
            return Err(RegistryError::new(
                RegistryErrorKind::Protocol,
                "relative redirect location",
            ));
        }
        Ok(Target {
            https: from.https,
            authority: from.authority.clone(),
            path: path.to_owned(),
        })
    }
}

fn status_error(status: StatusCode) -> RegistryError {
    RegistryError::new(RegistryErrorKind::Status, status.to_string())
}

/// `Retry-After`: delay-seconds or an HTTP-date.
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The path of an RFC 5988 `Link: <url>; rel="next"` header.
fn next_link(headers: &http::HeaderMap) -> Option<String> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let (url, params) = link.split_once(';')?;
    if !params.replace(' ', "").contains("rel=\"next\"") {
        return None;
    }
    let uri: http::Uri = url
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .parse()
        .ok()?;
    let path = uri.path_and_query()?.as_str();
    path.starts_with("/v2/").then(|| path.to_owned())
}

/// Percent-encodes a query value (RFC 3986 unreserved kept).
fn encode(value: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
        let mut h = http::HeaderMap::new();
        h.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            header::LINK,
            "</v2/a/referrers/sha256:x?n=2>; rel=\"next\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/v2/a/referrers/sha256:x?n=2")
        );
        h.insert(
            header::LINK,
            "<https://evil/x>; rel=\"next\"".parse().unwrap(),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn targets_and_redirects() {
        let r = Registry::new(RegistryConfig {
            insecure: vec!["127.0.0.1:5000".into()],
            ..RegistryConfig::default()
        });
        let t = r.target("docker.io", "/v2/").unwrap();
        assert!(t.https && t.authority == "registry-1.docker.io");
        let l = r.target("127.0.0.1:5000", "/v2/").unwrap();
        assert!(!l.https);
        assert!(r.redirect(&t, "http://storage.example/x").is_err());
        let rel = r.redirect(&l, "/v2/x/blobs/y?z").unwrap();
        assert_eq!(
            (rel.https, rel.authority.as_str(), rel.path.as_str()),
            (false, "127.0.0.1:5000", "/v2/x/blobs/y?z")
        );
        assert!(r.target("", "/").is_err());
    }
}

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
mod call;
mod config;
mod error;
mod manifest;
mod roots;
mod token;
mod transport;
mod urls;

pub use auth::{Challenge, parse_challenge};
pub use config::{Fetched, Observe, Operation, RegistryConfig, Repository};
pub use error::{RegistryError, RegistryErrorKind};
pub use manifest::{
    ACCEPT, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Manifest, OCI_INDEX, OCI_MANIFEST,
};
pub(crate) use transport::{Destination, Transport};
pub(crate) use urls::redirect;

use std::time::Instant;

use bytes::Bytes;
use dashmap::DashMap;
use http::{Method, StatusCode, header};

use super::digest::Digest;
use call::{next_link, status_error};

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

    /// The referrers of `digest`: the union of the OCI 1.1 API's answer
    /// (none where the registry has no API: 404) and the index at the
    /// `sha256-<hex>` fallback tag, asked for concurrently (clients that
    /// did not find the API keep the fallback index even on registries
    /// that have one). Each referrer once, in the order found.
    pub async fn referrers(
        &self,
        repo: &Repository,
        digest: Digest,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let (api, tag) = tokio::join!(
            Box::pin(self.referrers_api(repo, digest)),
            Box::pin(self.referrers_tag(repo, digest))
        );
        // A fallback index whose bytes are not the digest the registry
        // gave for them is no listing; the API's still counts.
        let tag = match tag {
            Err(e) if e.kind() == RegistryErrorKind::DigestMismatch => Vec::new(),
            other => other?,
        };
        let api = api?;
        let mut seen = std::collections::HashSet::new();
        Ok(api
            .into_iter()
            .chain(tag)
            .filter(|d| seen.insert(d.digest.clone()))
            .take(MAX_REFERRERS)
            .collect())
    }

    async fn referrers_api(
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
                StatusCode::NOT_FOUND if page == 0 => return Ok(Vec::new()),
                s => return Err(status_error(s)),
            }
            let index = Manifest::parse(&reply.body, None).ok_or_else(|| {
                RegistryError::new(RegistryErrorKind::Malformed, "referrers index")
            })?;
            out.extend(index.manifests);
            if out.len() >= MAX_REFERRERS {
                break;
            }
            match next_link(&reply.headers) {
                Some(next) => path = next,
                None => break,
            }
        }
        out.truncate(MAX_REFERRERS);
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
                let mut manifests = index.manifests;
                manifests.truncate(MAX_REFERRERS);
                Ok(manifests)
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// Referrers of one digest read, at most (from the API and the fallback
/// tag together): a bound on work per digest; the evidence path reads
/// fewer still.
const MAX_REFERRERS: usize = 256;

#[cfg(test)]
mod tests;

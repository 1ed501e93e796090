//! One registry request: the deadline, bounded retries on 429/503 (with
//! `Retry-After`), authentication on a 401 challenge, redirects, and the
//! status classified into a [`RegistryError`].

use std::time::{Duration, Instant, SystemTime};

use http::{Method, StatusCode, header};

use super::transport::{Destination, Reply};
use super::{Operation, Registry, RegistryError, RegistryErrorKind, Repository};

impl Registry {
    /// One logical request: auth challenges answered, redirects followed
    /// (without credentials to another host), 429/503 retried.
    pub(super) async fn call(
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

    pub(super) async fn exchange(
        &self,
        op: Operation,
        method: &Method,
        target: &Destination,
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
}

pub(super) fn status_error(status: StatusCode) -> RegistryError {
    RegistryError::new(RegistryErrorKind::Status, status.to_string())
}

/// `Retry-After`: delay-seconds or an HTTP-date.
pub(super) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
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
pub(super) fn next_link(headers: &http::HeaderMap) -> Option<String> {
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

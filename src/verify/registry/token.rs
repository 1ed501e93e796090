//! Registry authentication: bearer tokens from the token service (cached
//! until they expire) and basic credentials, after a 401 challenge.

use std::time::{Duration, Instant};

use http::{Method, StatusCode, header};

use super::config::BASIC_REUSE;
use super::transport::Reply;
use super::urls::encode;
use super::{
    Challenge, Operation, Registry, RegistryError, RegistryErrorKind, Repository, parse_challenge,
};

impl Registry {
    pub(super) fn cached_token(&self, key: &str) -> Option<String> {
        let entry = self.tokens.get(key)?;
        (entry.1 > Instant::now()).then(|| entry.0.clone())
    }

    pub(super) async fn authenticate(
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
        let token: super::auth::TokenResponse =
            serde_json::from_slice(&reply.body).map_err(|_| {
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
}

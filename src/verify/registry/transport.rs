//! One HTTP/1.1 exchange with a registry over TCP or TLS: connect, send,
//! read at most `limit` body bytes. No pooling: verification results are
//! cached, so connections are short-lived by design.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::error::{RegistryError, RegistryErrorKind};
use super::roots::root_store;
use crate::policy::CaBundle;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub(crate) https: bool,
    /// `host[:port]`.
    pub(crate) authority: String,
    /// Origin-form path and query.
    pub(crate) path: String,
}

/// An answer, body fully read.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) struct Transport {
    tls: TlsConnector,
}

impl Transport {
    pub(crate) fn new(ca: &CaBundle) -> Transport {
        let roots = root_store(ca);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Transport {
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    pub(crate) async fn send(
        &self,
        method: &Method,
        target: &Destination,
        accept: Option<&str>,
        authorization: Option<&str>,
        limit: usize,
    ) -> Result<Reply, RegistryError> {
        let (host, port) = split_authority(&target.authority, if target.https { 443 } else { 80 })?;
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                RegistryError::new(
                    RegistryErrorKind::Connect,
                    format!("{}: {e}", target.authority),
                )
            })?;
        let _ = stream.set_nodelay(true);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(target.path.as_str())
            .header(header::HOST, target.authority.as_str())
            .header(
                header::USER_AGENT,
                concat!("imagegate/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        let req = req
            .body(Empty::<Bytes>::new())
            .map_err(|e| RegistryError::new(RegistryErrorKind::Malformed, e.to_string()))?;
        if target.https {
            let name = ServerName::try_from(host).map_err(|_| {
                RegistryError::new(RegistryErrorKind::Connect, "bad TLS server name")
            })?;
            let tls =
                self.tls.connect(name, stream).await.map_err(|e| {
                    RegistryError::new(RegistryErrorKind::Connect, format!("TLS: {e}"))
                })?;
            exchange(tls, req, method, limit).await
        } else {
            exchange(stream, req, method, limit).await
        }
    }
}

async fn exchange<T>(
    io: T,
    req: Request<Empty<Bytes>>,
    method: &Method,
    limit: usize,
) -> Result<Reply, RegistryError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let protocol = |e: hyper::Error| RegistryError::new(RegistryErrorKind::Protocol, e.to_string());
    let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await.map_err(protocol)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await.map_err(protocol)?;
    let (parts, body) = resp.into_parts();
    // Only a success body is read in full; error bodies are read up to a
    // small cap, since nothing but their status is used.
    let limit = if parts.status.is_success() && method != Method::HEAD {
        limit
    } else {
        16 << 10
    };
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if method != Method::HEAD && announced.is_some_and(|n| n > limit as u64) {
        return Err(RegistryError::new(
            RegistryErrorKind::TooLarge,
            format!("{} bytes announced", announced.unwrap_or(0)),
        ));
    }
    let body = Limited::new(body, limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            RegistryError::new(
                RegistryErrorKind::TooLarge,
                format!("body over {limit} bytes"),
            )
        } else {
            RegistryError::new(RegistryErrorKind::Protocol, e.to_string())
        }
    })?;
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.to_bytes(),
    })
}

/// `host[:port]` or `[v6][:port]` → (host, port).
fn split_authority(authority: &str, default_port: u16) -> Result<(String, u16), RegistryError> {
    let bad = || {
        RegistryError::new(
            RegistryErrorKind::Malformed,
            format!("bad registry address {authority:?}"),
        )
    };
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tail.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_owned(), port.parse().map_err(|_| bad())?)),
        None => Ok((authority.to_owned(), default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        assert_eq!(split_authority("a.io", 443).unwrap(), ("a.io".into(), 443));
        assert_eq!(
            split_authority("127.0.0.1:5000", 443).unwrap(),
            ("127.0.0.1".into(), 5000)
        );
        assert_eq!(split_authority("[::1]:5", 443).unwrap(), ("::1".into(), 5));
        assert_eq!(split_authority("[::1]", 80).unwrap(), ("::1".into(), 80));
        assert!(split_authority("a:b", 443).is_err());
        assert!(split_authority("[::1", 443).is_err());
    }
}

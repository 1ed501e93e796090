//! A loopback proxy in front of the registry that records every request
//! path and can misbehave: answer 429 a number of times, stall, or answer
//! chosen paths with other bytes.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const OCI_INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Default)]
pub struct Behaviour {
    /// Answer this many requests with 429 + `Retry-After: 1` first.
    pub too_many: AtomicUsize,
    /// Stall every request this long before forwarding.
    pub delay: Mutex<Duration>,
    /// Answer a request whose path ends with `.0` with status `.1` and the
    /// bytes `.2` (with the upstream's other headers, less its length and
    /// digest: a client that knows the digest it asked for still notices).
    pub rewrite: Mutex<Vec<(String, u16, Bytes)>>,
}

pub struct Proxy {
    pub addr: String,
    pub paths: Arc<Mutex<Vec<String>>>,
    /// Requests that arrived with an `Authorization` header.
    pub authorized: Arc<AtomicUsize>,
    pub behaviour: Arc<Behaviour>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub fn count(&self, needle: &str) -> usize {
        self.paths
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.contains(needle))
            .count()
    }

    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let authorized = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(Behaviour::default());
        let (p, a, b, up) = (
            paths.clone(),
            authorized.clone(),
            behaviour.clone(),
            upstream.to_owned(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (p, a, b, up) = (p.clone(), a.clone(), b.clone(), up.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let (p, a, b, up) = (p.clone(), a.clone(), b.clone(), up.clone());
                        async move {
                            if req.headers().contains_key("authorization") {
                                a.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok::<_, Infallible>(forward(req, &p, &b, &up).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy {
            addr,
            paths,
            authorized,
            behaviour,
            task,
        }
    }
}

async fn forward(
    req: hyper::Request<Incoming>,
    paths: &Mutex<Vec<String>>,
    b: &Behaviour,
    upstream: &str,
) -> hyper::Response<Full<Bytes>> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    paths
        .lock()
        .expect("lock")
        .push(format!("{} {}", req.method(), path));
    let delay = *b.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if b.too_many
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return hyper::Response::builder()
            .status(429)
            .header("retry-after", "1")
            .body(Full::new(Bytes::from_static(
                b"{\"errors\":[{\"code\":\"TOOMANYREQUESTS\"}]}",
            )))
            .expect("response");
    }
    let rewrite = b
        .rewrite
        .lock()
        .expect("lock")
        .iter()
        .find(|(suffix, _, _)| path.ends_with(suffix.as_str()))
        .map(|(_, status, body)| (*status, body.clone()));
    let answer = relay(req, upstream).await;
    match rewrite {
        Some((status, body)) => {
            let (mut parts, _) = answer.into_parts();
            parts.headers.remove("content-length");
            parts.headers.remove("docker-content-digest");
            parts.status = hyper::StatusCode::from_u16(status).expect("status");
            parts
                .headers
                .insert("content-type", OCI_INDEX_TYPE.parse().expect("header"));
            hyper::Response::from_parts(parts, Full::new(body))
        }
        None => answer,
    }
}

/// Forwards `req` to the plain-HTTP registry at `upstream` (without its
/// `Host` and `Authorization` headers: the test registries behind a proxy
/// are open) and returns the answer.
pub async fn relay(req: hyper::Request<Incoming>, upstream: &str) -> hyper::Response<Full<Bytes>> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().as_str().to_owned();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter(|(k, _)| *k != "host" && *k != "authorization")
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let answer = super::http::request(upstream, &method, &path, &refs, body.to_vec()).await;
    let mut resp = hyper::Response::builder().status(answer.status);
    for (k, v) in &answer.headers {
        if k != "transfer-encoding" && k != "connection" {
            resp = resp.header(k, v);
        }
    }
    resp.body(Full::new(answer.body)).expect("response")
}

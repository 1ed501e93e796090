//! A bearer-token gate in front of an open registry, as Docker Hub and
//! most hosted registries work: every `/v2/<name>/...` request without a
//! token valid for `<name>` gets `401` and a `WWW-Authenticate: Bearer`
//! challenge; `GET /token` on the same listener checks basic credentials
//! and hands out a token for one repository; authorized requests are
//! forwarded to the registry (or, for blobs, optionally redirected to
//! another host, as registries do with storage URLs).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const SERVICE: &str = "test";

#[derive(Default)]
pub struct State {
    /// `scope` of every token handed out, in order.
    pub issued: Mutex<Vec<String>>,
    /// Token requests refused for bad or missing credentials.
    pub refused: AtomicUsize,
    /// Registry requests answered with a challenge.
    pub challenged: AtomicUsize,
    /// Registry requests let through.
    pub passed: AtomicUsize,
    tokens: Mutex<HashMap<String, String>>,
}

pub struct TokenGate {
    pub addr: String,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TokenGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Config {
    upstream: String,
    basic: String,
    blobs_at: Option<String>,
    addr: String,
}

impl TokenGate {
    /// Tokens issued for `scope` (`repository:<name>:pull`).
    pub fn issued_for(&self, scope: &str) -> usize {
        self.state
            .issued
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| *s == scope)
            .count()
    }

    /// A gate before the open registry at `upstream`, issuing tokens to
    /// `user`/`password`; with `blobs_at`, authorized blob requests are
    /// redirected (307) to `http://<blobs_at><same path>`.
    pub async fn start(
        upstream: &str,
        user: &str,
        password: &str,
        blobs_at: Option<&str>,
    ) -> TokenGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let state = Arc::new(State::default());
        let config = Arc::new(Config {
            upstream: upstream.to_owned(),
            basic: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            blobs_at: blobs_at.map(str::to_owned),
            addr: addr.clone(),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (st, config) = (st.clone(), config.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<Incoming>| {
                        let (st, config) = (st.clone(), config.clone());
                        async move { Ok::<_, Infallible>(handle(req, &st, &config).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TokenGate { addr, state, task }
    }
}

fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(*k, *v);
    }
    resp.body(Full::new(Bytes::from(body.to_owned())))
        .expect("response")
}

/// `<name>` of `/v2/<name>/(manifests|blobs|tags|referrers)/...`.
fn repository(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/")?;
    ["/manifests/", "/blobs/", "/tags/", "/referrers/"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()
        .map(|i| &rest[..i])
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    req: hyper::Request<Incoming>,
    st: &State,
    config: &Config,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if path == "/token" {
        let query = req.uri().query().unwrap_or("");
        let scope = query_param(query, "scope").unwrap_or_default();
        let service = query_param(query, "service");
        if auth.as_deref() != Some(config.basic.as_str()) {
            st.refused.fetch_add(1, Ordering::SeqCst);
            return answer(
                401,
                &[("www-authenticate", "Basic realm=\"token\"")],
                "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
            );
        }
        let name = scope
            .strip_prefix("repository:")
            .and_then(|s| s.strip_suffix(":pull"));
        let (Some(name), Some(SERVICE)) = (name, service.as_deref()) else {
            return answer(400, &[], "{\"details\":\"bad scope or service\"}");
        };
        let mut issued = st.issued.lock().expect("lock");
        let token = format!("tok-{}-{}", issued.len(), name.len());
        issued.push(scope.clone());
        st.tokens
            .lock()
            .expect("lock")
            .insert(token.clone(), name.to_owned());
        return answer(
            200,
            &[("content-type", "application/json")],
            &serde_json::json!({"token": token, "expires_in": 300}).to_string(),
        );
    }
    let Some(name) = repository(&path).map(str::to_owned) else {
        return answer(404, &[], "");
    };
    let valid = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .is_some_and(|t| st.tokens.lock().expect("lock").get(t) == Some(&name));
    if !valid {
        st.challenged.fetch_add(1, Ordering::SeqCst);
        let challenge = format!(
            "Bearer realm=\"http://{}/token\",service=\"{SERVICE}\",scope=\"repository:{name}:pull\"",
            config.addr
        );
        return answer(
            401,
            &[("www-authenticate", challenge.as_str())],
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
        );
    }
    st.passed.fetch_add(1, Ordering::SeqCst);
    if let Some(blobs) = &config.blobs_at
        && path.contains("/blobs/")
    {
        let location = format!("http://{blobs}{path}");
        return answer(307, &[("location", location.as_str())], "");
    }
    super::proxy::relay(req, &config.upstream).await
}

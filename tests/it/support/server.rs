//! Shared helpers of the `server_*` integration tests: starting a server
//! on 127.0.0.1:0, a small HTTP/1.1 + HTTP/2 client over plain TCP or
//! rustls, request bodies, and reading `/metrics`.
// Each test binary uses a different part; a failed unwrap is a failed test.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use imagegate::policy::parse_duration;
use imagegate::server::{
    App, Config, Limits, PolicySource, RecordConfig, ServeError, Server, ShutdownHandle, Signals,
    TlsFiles,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Bounds every wait in these tests.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A config on 127.0.0.1:0, logging warnings only, signals left alone,
/// with the `serve` flags in `args` set on it as they are written (the
/// ones these tests use). The binary's parsing and validation of every
/// flag is tested in `src/cli/serve/tests.rs` and through the binary in
/// the process tests; a combination the binary refuses must not be written
/// here.
pub fn config(args: &[&str]) -> Config {
    let mut config = Config::new(PolicySource::Builtin, "127.0.0.1:0".parse().unwrap());
    config.log.filter = "warn".to_owned();
    config.signals = Signals::Ignore;
    let duration = |v: &str| parse_duration(v).expect("a duration");
    let size = |v: &str| match (v.strip_suffix("KiB"), v.strip_suffix("MiB")) {
        (Some(k), _) => k.parse::<usize>().unwrap() * 1024,
        (_, Some(m)) => m.parse::<usize>().unwrap() << 20,
        _ => v.parse().unwrap(),
    };
    for pair in args.chunks(2) {
        let [flag, value] = pair else {
            panic!("flags come with values: {args:?}")
        };
        match *flag {
            "--policy" => config.policy = PolicySource::File(value.into()),
            "--tls-cert" | "--tls-key" | "--client-ca" => {
                let tls = config.tls.get_or_insert_with(|| TlsFiles {
                    cert: PathBuf::new(),
                    key: PathBuf::new(),
                    client_ca: None,
                });
                match *flag {
                    "--tls-cert" => tls.cert = value.into(),
                    "--tls-key" => tls.key = value.into(),
                    _ => tls.client_ca = Some(value.into()),
                }
            }
            "--http3-listen" => config.http3_listen = Some(value.parse().unwrap()),
            "--metrics-listen" => config.metrics_listen = Some(value.parse().unwrap()),
            "--max-body-bytes" => config.limits.max_body_bytes = size(value),
            "--max-connections" => config.limits.max_connections = value.parse().unwrap(),
            "--header-read-timeout" => config.limits.header_read_timeout = duration(value),
            "--body-read-timeout" => config.limits.body_read_timeout = duration(value),
            "--file-poll-interval" => config.file_poll_interval = duration(value),
            "--shutdown-delay" => config.shutdown_delay = duration(value),
            "--grace-period" => config.grace_period = duration(value),
            "--record" => {
                config.record = Some(RecordConfig {
                    path: value.into(),
                    max_bytes: 100 << 20,
                    keep: 3,
                });
            }
            "--record-max-bytes" => config.record.as_mut().unwrap().max_bytes = size(value) as u64,
            "--record-keep" => config.record.as_mut().unwrap().keep = value.parse().unwrap(),
            other => panic!("flag {other} is not known to the test support"),
        }
    }
    config
}

pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub http3_addr: Option<SocketAddr>,
    pub app: Arc<App>,
    pub handle: ShutdownHandle,
    pub task: JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Drains and waits for `serve` to return.
    pub async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("server stops in time")
            .expect("server task did not panic")
            .expect("clean shutdown");
    }
}

/// The request handler of a server for `policy` (the files it names read
/// from disk), generation 1, without sockets.
pub fn app_with(policy: &str, limits: Limits) -> App {
    App::new(
        imagegate::load::compile(policy)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_generation(1),
        limits,
    )
}

/// [`app_with`] with the default limits.
pub fn app_for(policy: &str) -> App {
    app_with(policy, Limits::default())
}

pub async fn start(config: Config) -> Running {
    let server = Server::bind(config).await.expect("server binds");
    Running {
        addr: server.local_addr(),
        metrics_addr: server.metrics_addr(),
        http3_addr: server.http3_addr(),
        app: server.app(),
        handle: server.shutdown_handle(),
        task: tokio::spawn(server.serve()),
    }
}

// ---------------------------------------------------------------- client

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    H1,
    H2,
}

pub fn client_tls(alpn: &[&[u8]], identity: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(fixture("ca.pem")).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(fixture(cert))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_file(fixture(key)).unwrap(),
            )
            .unwrap(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Full handshakes only: a resumed session reports the certificate of
    // the session it resumes, not the one the server holds now.
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One client connection.
pub struct Conn {
    sender: Sender,
    /// The protocol in use.
    pub proto: Proto,
    /// ALPN result (TLS only).
    pub alpn: Option<Vec<u8>>,
    /// The server's leaf certificate (TLS only).
    pub peer_cert: Option<CertificateDer<'static>>,
}

pub type Answer = (StatusCode, HeaderMap, Bytes);

/// Connects; with TLS, speaks HTTP/2 iff ALPN chose `h2`.
pub async fn connect(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    proto: Proto,
) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    match tls {
        None => handshake(TokioIo::new(tcp), proto, None, None).await,
        Some(config) => {
            let connector = tokio_rustls::TlsConnector::from(config);
            let name = ServerName::try_from("localhost").unwrap();
            let stream = connector.connect(name, tcp).await?;
            let (_, session) = stream.get_ref();
            let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
            let peer_cert = session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.clone().into_owned());
            let proto = if alpn.as_deref() == Some(b"h2") {
                Proto::H2
            } else {
                Proto::H1
            };
            handshake(TokioIo::new(stream), proto, alpn, peer_cert).await
        }
    }
}

async fn handshake<I>(
    io: I,
    proto: Proto,
    alpn: Option<Vec<u8>>,
    peer_cert: Option<CertificateDer<'static>>,
) -> Result<Conn, Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let sender = match proto {
        Proto::H1 => {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Sender::H1(sender)
        }
        Proto::H2 => {
            let (sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Sender::H2(sender)
        }
    };
    Ok(Conn {
        sender,
        proto,
        alpn,
        peer_cert,
    })
}

impl Conn {
    pub async fn send(
        &mut self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Answer, Box<dyn std::error::Error + Send + Sync>> {
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                if !request.headers().contains_key(http::header::HOST) {
                    request
                        .headers_mut()
                        .insert(http::header::HOST, "localhost".parse().unwrap());
                }
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                // HTTP/2 needs an absolute URI (scheme and authority).
                if request.uri().authority().is_none() {
                    let pq = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    *request.uri_mut() = format!("https://localhost{pq}").parse().unwrap();
                }
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }
}

/// One request on a fresh plain HTTP/1.1 connection.
pub async fn once(addr: SocketAddr, request: Request<Full<Bytes>>) -> Answer {
    let mut conn = connect(addr, None, Proto::H1).await.expect("connect");
    conn.send(request).await.expect("answer")
}

pub fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(path).body(Full::new(Bytes::new())).unwrap()
}

pub fn post(path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

// ---------------------------------------------------------------- bodies

pub fn image_review(images: &[&str]) -> String {
    let containers: Vec<String> = images
        .iter()
        .map(|i| format!(r#"{{"image":"{i}"}}"#))
        .collect();
    format!(
        r#"{{"kind":"ImageReview","apiVersion":"imagepolicy.k8s.io/v1alpha1","metadata":{{"creationTimestamp":null}},"spec":{{"containers":[{}],"namespace":"team-a"}},"status":{{"allowed":false}}}}"#,
        containers.join(",")
    )
}

pub fn admission_review(images: &[&str]) -> String {
    let containers: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(n, i)| format!(r#"{{"name":"c{n}","image":"{i}"}}"#))
        .collect();
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"name":"web","namespace":"prod","operation":"CREATE","userInfo":{{"username":"alice"}},"object":{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web","namespace":"prod"}},"spec":{{"containers":[{}]}}}},"oldObject":null,"dryRun":false}}}}"#,
        containers.join(",")
    )
}

/// `status.allowed` of an ImageReview answer.
pub fn image_review_allowed(body: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON answer");
    v["status"]["allowed"].as_bool().expect("status.allowed")
}

/// `response.allowed` of an AdmissionReview answer.
pub fn admission_allowed(body: &[u8]) -> bool {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON answer");
    v["response"]["allowed"]
        .as_bool()
        .expect("response.allowed")
}

pub const POLICY_ALLOW_ALL: &str =
    "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec: {}\n";
pub const POLICY_DENY_DOCKER_HUB: &str = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  registries:\n    deny: [docker.io]\n";
pub const POLICY_BROKEN: &str = "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  registries:\n    denny: [docker.io]\n";

/// Whether the server at `addr` allows the ImageReview `review`
/// (`POST /imagepolicy`).
pub async fn allows(addr: SocketAddr, review: String) -> bool {
    let (_, _, body) = once(addr, post("/imagepolicy", review)).await;
    image_review_allowed(&body)
}

// ---------------------------------------------------------------- metrics

/// The value of one sample line (`name{labels}` exactly as rendered).
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

pub async fn metrics_text(addr: SocketAddr) -> String {
    let (status, _, body) = once(addr, get("/metrics")).await;
    assert_eq!(status, 200);
    String::from_utf8(body.to_vec()).unwrap()
}

/// Polls `check` until it returns true, failing after [`DEADLINE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Replaces `path` atomically (write a sibling, rename over).
pub fn replace_file(path: &Path, contents: &[u8]) {
    let tmp = path.with_extension("tmp-new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// POSTs `body` as JSON to `app` in process: the status and the JSON answer.
pub async fn app_post(
    app: &App,
    path: &str,
    body: &serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let request = Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let (status, bytes) = in_process(app, request).await;
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

/// `/metrics` of `app`, in process.
pub async fn app_metrics(app: &App) -> String {
    let request = Request::builder()
        .uri("/metrics")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let (_, bytes) = in_process(app, request).await;
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// `request` answered by `app` in process: the status and the whole body.
async fn in_process(app: &App, request: Request<Full<Bytes>>) -> (StatusCode, Bytes) {
    let response = app.handle(request).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

//! Test support: a hostile registry on 127.0.0.1 that writes its HTTP/1.1
//! answers by hand (over plain TCP or rustls) so it can break every rule —
//! hang after the headers, trickle, send a body that never ends, reset the
//! connection, never answer, stall a TLS handshake — while it counts what
//! it was sent and how many connections are still open; the honest
//! registry it starts from, serving the committed cosign fixtures; and a
//! throwaway PKI made with `openssl` at test time.

#![allow(dead_code, unreachable_pub, clippy::print_stderr, clippy::unwrap_used)]

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imagegate::policy::{KeySet, PublicKey};
use imagegate::verify::Digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// How long a trickling answer waits between two bytes.
pub const TRICKLE: Duration = Duration::from_millis(100);

/// A request as the registry read it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// The `Host` header.
    pub host: String,
    pub authorization: Option<String>,
}

impl Req {
    /// `METHOD path`, as the request log keeps it.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// A well-formed answer (`Content-Length` is the body's unless a header
/// sets it; every answer says `Connection: close`).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Answer {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Answer {
        self.body = body.into();
        self
    }

    /// A 200 with `content_type`, a `Docker-Content-Digest` of `digest`
    /// (when given) and `body`.
    pub fn content(content_type: &str, digest: Option<Digest>, body: &[u8]) -> Answer {
        let mut a = Answer::new(200)
            .header("Content-Type", content_type)
            .body(body);
        if let Some(d) = digest {
            a = a.header("Docker-Content-Digest", d.to_string());
        }
        a
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Answer {
        Answer::new(status).header("Location", location)
    }

    /// Status line and headers.
    pub fn head(&self) -> Vec<u8> {
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Whatever");
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", self.status);
        let framed = self.headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        });
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !framed {
            out.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        out.push_str("Connection: close\r\n\r\n");
        out.into_bytes()
    }

    /// Head and (unless for a `HEAD`) body, as sent.
    pub fn bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = self.head();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// What the registry does with one request.
pub enum Act {
    /// The answer, then the connection is closed.
    Send(Answer),
    /// The status line and headers (announcing the body), then nothing
    /// until the client goes away.
    HeadThenHang(Answer),
    /// The first `at_once` bytes of the answer at once, then one byte
    /// every [`TRICKLE`].
    Trickle { answer: Answer, at_once: usize },
    /// A 200 whose body never ends, written as fast as the client reads:
    /// `Content-Length: length` (and that many bytes), or chunked without
    /// end when `None`.
    Endless {
        content_type: &'static str,
        length: Option<u64>,
    },
    /// The head and half the body, then a TCP reset.
    ResetMidBody(Answer),
    /// The request is read and never answered.
    Silence,
}

/// What the registry saw.
#[derive(Default)]
pub struct Counters {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Connections not yet closed (by either side).
    pub open: AtomicUsize,
    /// Body bytes written by [`Act::Endless`] answers.
    pub endless_bytes: AtomicU64,
    /// Every request, in arrival order.
    pub requests: Mutex<Vec<Req>>,
}

/// How connections are greeted.
pub enum Front {
    /// Plain HTTP/1.1.
    Plain,
    /// TLS, then HTTP/1.1.
    Tls(TlsAcceptor),
    /// Reads the ClientHello, writes these bytes and then nothing more
    /// until the client goes away (a handshake that stalls).
    StalledHandshake(&'static [u8]),
}

type Route = Arc<dyn Fn(&Req) -> Act + Send + Sync>;

/// A running hostile registry; stops accepting when dropped.
pub struct Hostile {
    pub addr: String,
    pub counters: Arc<Counters>,
    task: JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Hostile {
    /// A plain-HTTP registry answering every request with `route`.
    pub async fn start(route: impl Fn(&Req) -> Act + Send + Sync + 'static) -> Hostile {
        Hostile::start_with(Front::Plain, route).await
    }

    pub async fn start_with(
        front: Front,
        route: impl Fn(&Req) -> Act + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let counters = Arc::new(Counters::default());
        let route: Route = Arc::new(route);
        let front = Arc::new(front);
        let c = counters.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.connections.fetch_add(1, Ordering::SeqCst);
                c.open.fetch_add(1, Ordering::SeqCst);
                let (c, route, front) = (c.clone(), route.clone(), front.clone());
                tokio::spawn(async move {
                    // A client that never goes away holds a connection at
                    // most this long (the tests end well before).
                    let _ = tokio::time::timeout(
                        Duration::from_secs(120),
                        connection(stream, &front, &route, &c),
                    )
                    .await;
                    c.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Hostile {
            addr,
            counters,
            task,
        }
    }

    /// Requests whose `METHOD path` contains `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.counters
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.line().contains(needle))
            .count()
    }

    /// Every request so far.
    pub fn requests(&self) -> usize {
        self.counters.requests.lock().unwrap().len()
    }

    pub fn lines(&self) -> Vec<String> {
        self.counters
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(Req::line)
            .collect()
    }

    /// Waits until every connection is closed; false if some are still
    /// open after `within`.
    pub async fn all_closed_within(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while self.counters.open.load(Ordering::SeqCst) > 0 {
            if Instant::now() > until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

enum Ending {
    Close,
    Reset,
}

async fn connection(stream: TcpStream, front: &Front, route: &Route, c: &Counters) {
    let _ = stream.set_nodelay(true);
    match front {
        Front::Plain => {
            let mut stream = stream;
            if let Ok(Ending::Reset) = serve(&mut stream, route, c).await {
                let _ = stream.set_zero_linger();
            }
        }
        Front::Tls(acceptor) => {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            match serve(&mut tls, route, c).await {
                Ok(Ending::Reset) => {
                    let _ = tls.get_ref().0.set_zero_linger();
                }
                Ok(Ending::Close) => {
                    let _ = tls.shutdown().await;
                }
                Err(_) => {}
            }
        }
        Front::StalledHandshake(prefix) => {
            let mut stream = stream;
            let mut hello = [0u8; 4096];
            if matches!(stream.read(&mut hello).await, Ok(n) if n > 0)
                && stream.write_all(prefix).await.is_ok()
            {
                hold(&mut stream).await;
            }
        }
    }
}

/// Reads (and discards) until the client closes its side.
async fn hold<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn serve<S>(s: &mut S, route: &Route, c: &Counters) -> io::Result<Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(req) = read_request(s).await? else {
        // Not HTTP (a TLS ClientHello, say): what a plain server answers.
        s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await?;
        return Ok(Ending::Close);
    };
    c.requests.lock().unwrap().push(req.clone());
    let head_only = req.method == "HEAD";
    match route(&req) {
        Act::Send(a) => {
            s.write_all(&a.bytes(head_only)).await?;
            s.flush().await?;
        }
        Act::HeadThenHang(a) => {
            s.write_all(&a.head()).await?;
            s.flush().await?;
            hold(s).await;
        }
        Act::Trickle { answer, at_once } => {
            let bytes = answer.bytes(head_only);
            let at_once = at_once.min(bytes.len());
            s.write_all(&bytes[..at_once]).await?;
            s.flush().await?;
            for b in &bytes[at_once..] {
                tokio::time::sleep(TRICKLE).await;
                s.write_all(std::slice::from_ref(b)).await?;
                s.flush().await?;
            }
        }
        Act::Endless {
            content_type,
            length,
        } => {
            let framing = match length {
                Some(n) => format!("Content-Length: {n}"),
                None => "Transfer-Encoding: chunked".to_owned(),
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{framing}\r\nConnection: close\r\n\r\n"
            );
            s.write_all(head.as_bytes()).await?;
            let block = vec![b' '; 64 << 10];
            let mut chunk = format!("{:x}\r\n", block.len()).into_bytes();
            chunk.extend_from_slice(&block);
            chunk.extend_from_slice(b"\r\n");
            let mut left = length.unwrap_or(u64::MAX);
            while left > 0 {
                let n = match length {
                    Some(_) => {
                        let n = left.min(block.len() as u64) as usize;
                        s.write_all(&block[..n]).await?;
                        n
                    }
                    None => {
                        s.write_all(&chunk).await?;
                        block.len()
                    }
                };
                c.endless_bytes.fetch_add(n as u64, Ordering::SeqCst);
                left = left.saturating_sub(n as u64);
            }
        }
        Act::ResetMidBody(a) => {
            s.write_all(&a.head()).await?;
            s.write_all(&a.body[..a.body.len() / 2]).await?;
            s.flush().await?;
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Ok(Ending::Reset);
        }
        Act::Silence => hold(s).await,
    }
    Ok(Ending::Close)
}

/// The request head, or `None` when the bytes are not HTTP.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<Req>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_uppercase() {
            return Ok(None);
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 << 10 {
            return Ok(None);
        }
    };
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let path = first.next().unwrap_or("").to_owned();
    let (mut host, mut authorization) = (String::new(), None);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("host") {
            host = v.trim().to_owned();
        } else if k.trim().eq_ignore_ascii_case("authorization") {
            authorization = Some(v.trim().to_owned());
        }
    }
    Ok(Some(Req {
        method,
        path,
        host,
        authorization,
    }))
}

/// The honest registry: repository `hostile/app` holding the committed
/// "app" image under tag `v1`, its cosign signature (`.sig`, signed with
/// tests/fixtures/verify/keys/cosign.pub) and an empty referrers list.
pub struct Site {
    pub repo: &'static str,
    pub image: Digest,
    pub image_manifest: Vec<u8>,
    pub sig_manifest: Vec<u8>,
    pub payload: Vec<u8>,
    pub payload_digest: Digest,
    /// A Sigstore bundle manifest with the image as subject (served by
    /// digest; listed only where a case lists it).
    pub bundle_manifest: Vec<u8>,
    pub bundle_digest: Digest,
    /// The bundle itself (tests/fixtures/verify/bundles/app.sign.bundle.json).
    pub bundle: Vec<u8>,
    pub keys: KeySet,
}

impl Site {
    pub fn load() -> Site {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify");
        let read =
            |rel: &str| std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let text = |rel: &str| String::from_utf8(read(rel)).unwrap();
        let image = Digest::parse(text("images/app.digest").trim()).unwrap();
        let image_manifest = read(&format!(
            "images/app/blobs/sha256/{}",
            image.to_string().trim_start_matches("sha256:")
        ));
        assert_eq!(Digest::of(&image_manifest), image);
        let payload = read("sig/app.payload.json");
        let payload_digest = Digest::of(&payload);
        let sig = text("sig/app.sig.b64");
        let sig_manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": SIMPLE_SIGNING, "digest": payload_digest.to_string(),
                        "size": payload.len(),
                        "annotations": {"dev.cosignproject.cosign/signature": sig.trim()}}]})
        .to_string()
        .into_bytes();
        let bundle = read("bundles/app.sign.bundle.json");
        let bundle_manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": BUNDLE,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": BUNDLE, "digest": Digest::of(&bundle).to_string(),
                        "size": bundle.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image.to_string(),
                        "size": image_manifest.len()}})
        .to_string()
        .into_bytes();
        let keys = KeySet::new(vec![PublicKey::from_pem(&text("keys/cosign.pub")).unwrap()]);
        Site {
            repo: "hostile/app",
            image,
            image_manifest,
            bundle_digest: Digest::of(&bundle_manifest),
            bundle_manifest,
            bundle,
            sig_manifest,
            payload,
            payload_digest,
            keys,
        }
    }

    pub fn tag_path(&self) -> String {
        format!("/v2/{}/manifests/v1", self.repo)
    }

    pub fn sig_path(&self) -> String {
        format!("/v2/{}/manifests/{}.sig", self.repo, self.image.tag())
    }

    pub fn blob_path(&self) -> String {
        format!("/v2/{}/blobs/{}", self.repo, self.payload_digest)
    }

    pub fn referrers_path(&self) -> String {
        format!("/v2/{}/referrers/{}", self.repo, self.image)
    }

    pub fn bundle_path(&self) -> String {
        format!("/v2/{}/manifests/{}", self.repo, self.bundle_digest)
    }

    pub fn bundle_blob_path(&self) -> String {
        format!("/v2/{}/blobs/{}", self.repo, Digest::of(&self.bundle))
    }

    /// A referrers index listing the bundle manifest.
    pub fn referrers_with_bundle(&self) -> Vec<u8> {
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": self.bundle_digest.to_string(),
             "size": self.bundle_manifest.len(), "artifactType": BUNDLE,
             "annotations": {"dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1"}}]})
        .to_string()
        .into_bytes()
    }

    /// What a well-behaved registry answers.
    pub fn honest(&self, req: &Req) -> Act {
        let path = req.path.as_str();
        let image_paths = [
            self.tag_path(),
            format!("/v2/{}/manifests/{}", self.repo, self.image),
        ];
        let answer = if image_paths.iter().any(|p| p == path) {
            Answer::content(OCI_MANIFEST, Some(self.image), &self.image_manifest)
        } else if path == self.sig_path() {
            Answer::content(
                OCI_MANIFEST,
                Some(Digest::of(&self.sig_manifest)),
                &self.sig_manifest,
            )
        } else if path == self.blob_path() {
            Answer::content("application/octet-stream", None, &self.payload)
        } else if path == self.referrers_path() {
            let empty =
                format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
            Answer::content(OCI_INDEX, None, empty.as_bytes())
        } else if path == self.bundle_path() {
            Answer::content(
                OCI_MANIFEST,
                Some(self.bundle_digest),
                &self.bundle_manifest,
            )
        } else if path == self.bundle_blob_path() {
            Answer::content("application/octet-stream", None, &self.bundle)
        } else {
            Answer::new(404)
                .header("Content-Type", "application/json")
                .body(&br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}"#[..])
        };
        Act::Send(answer)
    }
}

/// The resident set size of this process (`VmRSS`), in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// A server certificate of [`Pki`].
#[derive(Debug, Clone, Copy)]
pub enum Leaf {
    /// From the test CA, SAN IP:127.0.0.1, valid now.
    Good,
    /// From the test CA, SAN IP:127.0.0.1, expired in 2020.
    Expired,
    /// From the test CA, valid now, for another name only.
    WrongName,
    /// Self-signed: no trusted CA vouches for it.
    SelfSigned,
}

/// A throwaway PKI made with `openssl` in a temporary directory: a CA
/// (which the client under test may trust) and server certificates, good
/// and bad.
pub struct Pki {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM).
    pub ca: String,
}

const SERVER_EXT: &str = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";

impl Pki {
    /// Runs `openssl`; panics (a failure, not a skip) when it is missing.
    pub fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
        let run = |args: &str| openssl(d, args);
        for k in ["ca", "good", "expired", "wrong", "self"] {
            run(&format!(
                "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {k}.key"
            ));
        }
        write(
            "ca.ext",
            "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
        );
        write(
            "ip.ext",
            &format!("{SERVER_EXT}subjectAltName=IP:127.0.0.1\n"),
        );
        write(
            "wrong.ext",
            &format!("{SERVER_EXT}subjectAltName=DNS:registry.invalid\n"),
        );
        for (k, cn) in [
            ("ca", "imagegate-hostile-test-CA"),
            ("good", "127.0.0.1"),
            ("expired", "127.0.0.1"),
            ("wrong", "registry.invalid"),
            ("self", "self-signed"),
        ] {
            run(&format!(
                "req -new -key {k}.key -subj /CN={cn} -out {k}.csr"
            ));
        }
        // self-signed: the CA, and an end-entity certificate no CA vouches for
        run("x509 -req -in ca.csr -signkey ca.key -sha256 -days 2 -extfile ca.ext -out ca.pem");
        run(
            "x509 -req -in self.csr -signkey self.key -sha256 -days 2 -extfile ip.ext -out self.pem",
        );
        for (k, ext) in [("good", "ip.ext"), ("wrong", "wrong.ext")] {
            run(&format!(
                "x509 -req -in {k}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -CAserial ca.srl \
                 -sha256 -days 2 -extfile {ext} -out {k}.pem"
            ));
        }
        // `x509 -req` cannot backdate; `openssl ca` can
        write("index.txt", "");
        write("serial", "1000\n");
        write(
            "ca.cnf",
            "[ca]\ndefault_ca = any\n[any]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
             default_md = sha256\npolicy = anything\nunique_subject = no\n[anything]\ncommonName = supplied\n",
        );
        run(
            "ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr \
             -out expired.pem -startdate 20200101000000Z -enddate 20200201000000Z -extfile ip.ext",
        );
        let ca = std::fs::read_to_string(d.join("ca.pem")).unwrap();
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A TLS acceptor presenting `leaf` (HTTP/1.1 by ALPN).
    pub fn acceptor(&self, leaf: Leaf) -> TlsAcceptor {
        let name = match leaf {
            Leaf::Good => "good",
            Leaf::Expired => "expired",
            Leaf::WrongName => "wrong",
            Leaf::SelfSigned => "self",
        };
        let certs = CertificateDer::pem_file_iter(self.path(&format!("{name}.pem")))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(self.path(&format!("{name}.key"))).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    }
}

/// Runs `openssl` with whitespace-separated `args` in `dir`.
fn openssl(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("openssl is required for these tests: {e}"));
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

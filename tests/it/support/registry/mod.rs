//! Test support: a real Debian `docker-registry` (distribution v2) on
//! 127.0.0.1, a pusher for images and cosign artifacts, a counting and
//! misbehaving proxy, a bearer-token gate, TLS and htpasswd variants of the
//! registry, and the committed fixtures.
//!
//! When `/usr/bin/docker-registry` is absent, [`RegistryProcess::start`]
//! returns `None` and [`registry!`] fails the test; the tests that need it
//! are ignored where it was absent at build time (`build.rs`), and
//! `.ci/run` installs it.

#![allow(dead_code, unreachable_pub, clippy::print_stderr)]

pub mod http;
pub mod proxy;
pub mod token;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use imagegate::verify::Digest;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The htpasswd user of [`Options::htpasswd`].
pub const HTPASSWD_USER: &str = "ci";
/// Its password (test-only).
pub const HTPASSWD_PASSWORD: &str = "registry-test-password";
/// bcrypt (cost 4, for speed: the registry checks it on every request) of
/// [`HTPASSWD_PASSWORD`], made once with libxcrypt's `crypt()`
/// (`python3 -c "import crypt; print(crypt.crypt(PW, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"`).
pub const HTPASSWD_BCRYPT: &str = "$2b$04$x481mkxN.f7tqwdF52jLI.BH81L2wwjfJ8DPvI6uHiSOpR1LVgHpu";

/// How a registry process serves.
#[derive(Default)]
pub struct Options {
    /// HTTPS with tests/fixtures/tls/server.pem (CA: ca.pem, SAN 127.0.0.1).
    pub tls: bool,
    /// `auth: htpasswd` with [`HTPASSWD_USER`]/[`HTPASSWD_PASSWORD`].
    pub htpasswd: bool,
    /// Serve this storage root (another process's `data`) instead of a
    /// fresh one: content is pushed through a plain, open registry and read
    /// through this one.
    pub storage: Option<PathBuf>,
}

/// A running registry; killed on drop.
pub struct RegistryProcess {
    child: Child,
    pub addr: String,
    /// The storage root (shareable with a second registry process).
    pub data: PathBuf,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl RegistryProcess {
    /// Starts `docker-registry serve` on a free loopback port, or returns
    /// `None` when the binary is not installed (a benchmark then skips
    /// itself; a test uses [`registry!`], which fails).
    pub fn start(test: &str) -> Option<RegistryProcess> {
        RegistryProcess::start_with(test, &Options::default())
    }

    /// Like [`RegistryProcess::start`], with TLS, htpasswd auth or another
    /// registry's storage as `options` ask.
    pub fn start_with(test: &str, options: &Options) -> Option<RegistryProcess> {
        if !Path::new(REGISTRY_BIN).exists() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        let data = options
            .storage
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let mut text = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            data.display()
        );
        if options.tls {
            let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                tls.join("server.pem").display(),
                tls.join("server.key").display()
            ));
        }
        if options.htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, format!("{HTPASSWD_USER}:{HTPASSWD_BCRYPT}\n"))
                .expect("htpasswd");
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: imagegate-test\n    path: {}\n",
                file.display()
            ));
        }
        std::fs::write(&config, text).expect("config");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("log"))
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn docker-registry");
        let reg = RegistryProcess {
            child,
            addr,
            data,
            _dir: dir,
            log,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if std::net::TcpStream::connect(&reg.addr).is_ok() {
                return Some(reg);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{test}: docker-registry did not start on {}", reg.addr);
    }
}

impl Drop for RegistryProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The committed fixtures (tests/fixtures/verify, made by generate.sh).
pub struct Fixtures {
    pub dir: PathBuf,
    pub app: Digest,
    pub hello: Digest,
}

impl Fixtures {
    pub fn load() -> Fixtures {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify");
        let read_digest = |name: &str| {
            Digest::parse(
                std::fs::read_to_string(dir.join("images").join(name))
                    .expect("digest")
                    .trim(),
            )
            .expect("digest")
        };
        Fixtures {
            app: read_digest("app.digest"),
            hello: read_digest("hello.digest"),
            dir,
        }
    }

    pub fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn text(&self, rel: &str) -> String {
        String::from_utf8(self.bytes(rel)).expect("utf-8")
    }

    /// A cosign v2 keyless layer (`keyless/<name>`, made by
    /// `keyless/generate.sh`): its blob (the `field` member: a string as
    /// its bytes, JSON as written) and its annotations.
    #[allow(
        dead_code,
        reason = "not every file that includes this reads keyless layers"
    )]
    pub fn cosign_layer(&self, name: &str, field: &str) -> (Vec<u8>, serde_json::Value) {
        let v: serde_json::Value =
            serde_json::from_str(&self.text(&format!("keyless/{name}"))).expect("JSON");
        let blob = match &v[field] {
            serde_json::Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        (blob, v["annotations"].clone())
    }

    /// Every blob and the manifest of an OCI layout ("app" or "hello").
    pub fn image(&self, name: &str) -> (Vec<Vec<u8>>, Vec<u8>) {
        let layout = self.dir.join("images").join(name);
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
                .expect("json");
        let manifest_digest = index["manifests"][0]["digest"]
            .as_str()
            .expect("digest")
            .to_owned();
        let mut blobs = Vec::new();
        let mut manifest = Vec::new();
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
            let entry = entry.expect("entry");
            let bytes = std::fs::read(entry.path()).expect("blob");
            if format!("sha256:{}", entry.file_name().to_string_lossy()) == manifest_digest {
                manifest = bytes;
            } else {
                blobs.push(bytes);
            }
        }
        (blobs, manifest)
    }
}

/// Pushes images and cosign artifacts into a registry at `addr`.
pub struct Pusher {
    pub addr: String,
}

impl Pusher {
    pub async fn blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let digest = Digest::of(bytes);
        let start = http::request(
            &self.addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[],
            Vec::new(),
        )
        .await;
        assert_eq!(
            start.status,
            202,
            "start upload: {}",
            String::from_utf8_lossy(&start.body)
        );
        let location = start.header("location").expect("location");
        let uri: ::http::Uri = location.parse().expect("uri");
        let pq = uri.path_and_query().expect("path").as_str();
        let sep = if pq.contains('?') { '&' } else { '?' };
        let put = http::request(
            &self.addr,
            "PUT",
            &format!("{pq}{sep}digest={digest}"),
            &[("content-type", "application/octet-stream")],
            bytes.to_vec(),
        )
        .await;
        assert_eq!(
            put.status,
            201,
            "put blob: {}",
            String::from_utf8_lossy(&put.body)
        );
        digest
    }

    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Digest {
        let put = http::request(
            &self.addr,
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", media_type)],
            bytes.to_vec(),
        )
        .await;
        assert_eq!(
            put.status,
            201,
            "put manifest: {}",
            String::from_utf8_lossy(&put.body)
        );
        Digest::of(bytes)
    }

    /// Pushes a fixture image under `repo:tag`; returns its digest.
    pub async fn image(&self, fx: &Fixtures, name: &str, repo: &str, tag: &str) -> Digest {
        let (blobs, manifest) = fx.image(name);
        for b in &blobs {
            self.blob(repo, b).await;
        }
        self.manifest(repo, tag, OCI_MANIFEST, &manifest).await
    }

    /// A cosign `.sig` image: one simple-signing layer per (payload, sig).
    pub async fn signatures(&self, repo: &str, image: Digest, layers: &[(Vec<u8>, String)]) {
        let layers: Vec<(Vec<u8>, serde_json::Value)> = layers
            .iter()
            .map(|(payload, sig)| {
                (
                    payload.clone(),
                    serde_json::json!({"dev.cosignproject.cosign/signature": sig}),
                )
            })
            .collect();
        self.signature_layers(repo, image, &layers).await;
    }

    /// A cosign `.sig` image: one simple-signing layer per (payload,
    /// annotations), e.g. cosign v2's keyless certificate and Rekor bundle.
    pub async fn signature_layers(
        &self,
        repo: &str,
        image: Digest,
        layers: &[(Vec<u8>, serde_json::Value)],
    ) {
        let config = self.blob(repo, b"{}").await;
        let mut descs = Vec::new();
        for (payload, annotations) in layers {
            let d = self.blob(repo, payload).await;
            descs.push(serde_json::json!({
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": d.to_string(), "size": payload.len(),
                "annotations": annotations}));
        }
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
            "layers": descs});
        self.manifest(
            repo,
            &format!("{}.sig", image.tag()),
            OCI_MANIFEST,
            manifest.to_string().as_bytes(),
        )
        .await;
    }

    /// A cosign `.att` image: one DSSE layer per (envelope, annotated type).
    pub async fn attestations(&self, repo: &str, image: Digest, layers: &[(Vec<u8>, &str)]) {
        let layers: Vec<(Vec<u8>, serde_json::Value)> = layers
            .iter()
            .map(|(envelope, ptype)| {
                (
                    envelope.clone(),
                    serde_json::json!({"dev.cosignproject.cosign/signature": "", "predicateType": ptype}),
                )
            })
            .collect();
        self.attestation_layers(repo, image, &layers).await;
    }

    /// A cosign `.att` image: one DSSE layer per (envelope, annotations).
    pub async fn attestation_layers(
        &self,
        repo: &str,
        image: Digest,
        layers: &[(Vec<u8>, serde_json::Value)],
    ) {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (envelope, annotations) in layers {
            let d = self.blob(repo, envelope).await;
            diff_ids.push(d.to_string());
            descs.push(serde_json::json!({
                "mediaType": "application/vnd.dsse.envelope.v1+json",
                "digest": d.to_string(), "size": envelope.len(),
                "annotations": annotations}));
        }
        let config = serde_json::json!({"architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids}})
        .to_string();
        let cd = self.blob(repo, config.as_bytes()).await;
        let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
            "layers": descs});
        self.manifest(
            repo,
            &format!("{}.att", image.tag()),
            OCI_MANIFEST,
            manifest.to_string().as_bytes(),
        )
        .await;
    }

    /// Sigstore bundles as referrers of `image` (cosign v3 layout), listed
    /// in the `sha256-<hex>` fallback index (docker-registry 2.8 has no
    /// referrers API).
    pub async fn bundles(
        &self,
        repo: &str,
        image: Digest,
        image_size: usize,
        bundles: &[(Vec<u8>, &str)],
    ) {
        let empty = self.blob(repo, b"{}").await;
        let mut entries = Vec::new();
        for (bundle, ptype) in bundles {
            let layer = self.blob(repo, bundle).await;
            let annotations = serde_json::json!({"dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": ptype, "org.opencontainers.image.created": "2026-07-01T00:00:00Z"});
            let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
                "layers": [{"mediaType": BUNDLE, "digest": layer.to_string(), "size": bundle.len()}],
                "subject": {"mediaType": OCI_MANIFEST, "digest": image.to_string(), "size": image_size},
                "annotations": annotations.clone()})
            .to_string();
            let d = self
                .manifest(
                    repo,
                    &Digest::of(manifest.as_bytes()).to_string(),
                    OCI_MANIFEST,
                    manifest.as_bytes(),
                )
                .await;
            entries.push(serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": manifest.len(),
                "artifactType": BUNDLE, "annotations": annotations}));
        }
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
                .to_string();
        self.manifest(repo, &image.tag(), OCI_INDEX, index.as_bytes())
            .await;
    }
}

/// The registry for a test; a missing binary fails the test. Tests that
/// use it carry `#[cfg_attr(not(have_docker_registry), ignore = ...)]`
/// (`build.rs`), so they fail only where the binary was there at build
/// time, or where `IMAGEGATE_REQUIRE_TOOLS` asks for it. (Unused where this
/// file is included by the benches.)
#[allow(unused_macros)]
macro_rules! registry {
    ($name:expr) => {
        $crate::support::registry::RegistryProcess::start($name)
            .expect($crate::support::registry::MISSING)
    };
}

/// A verifier for the plain-HTTP registry at `addr`, with empty caches.
#[allow(dead_code, reason = "not every file that includes this verifies")]
pub fn verifier(addr: &str) -> imagegate::verify::Verifier {
    imagegate::verify::Verifier::new(imagegate::verify::VerifierConfig {
        registry: imagegate::verify::RegistryConfig {
            insecure: vec![addr.to_owned()],
            call_timeout: Duration::from_secs(2),
            ..imagegate::verify::RegistryConfig::default()
        },
        cache: Default::default(),
    })
}

/// What verifying `image` under `req` with `v` comes to (a 5 s deadline).
#[allow(dead_code, reason = "not every file that includes this verifies")]
pub async fn outcome(
    v: &imagegate::verify::Verifier,
    image: &str,
    req: &imagegate::policy::Requirement,
) -> imagegate::policy::Outcome {
    let r = imagegate::reference::Reference::parse(image).expect("reference");
    v.verify(&r, req, Instant::now() + Duration::from_secs(5))
        .await
        .outcome
}

/// What a test without the registry binary says.
#[allow(dead_code)]
pub const MISSING: &str = "/usr/bin/docker-registry is not installed (apt-get install docker-registry; .ci/run installs it)";
#[allow(unused_imports)]
pub(crate) use registry;

/// A registry with `fixtures/app:v1` (signed with the cosign fixture key)
/// and `fixtures/hello:v1` (unsigned).
pub async fn populated(reg: &RegistryProcess) -> Fixtures {
    let fx = Fixtures::load();
    let push = Pusher {
        addr: reg.addr.clone(),
    };
    let d = push.image(&fx, "app", "fixtures/app", "v1").await;
    assert_eq!(d, fx.app);
    let layer = (fx.bytes("sig/app.payload.json"), fx.text("sig/app.sig.b64"));
    push.signatures("fixtures/app", d, &[layer]).await;
    push.image(&fx, "hello", "fixtures/hello", "v1").await;
    fx
}

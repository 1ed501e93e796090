//! Verification against hostile registries: one honest fake registry
//! (hand-written HTTP/1.1 on 127.0.0.1, serving the committed, signed
//! fixtures) and a matrix of ways to break it — answers that hang after
//! their headers, trickle, never end or are gigabytes long, lie about
//! digests, redirect in circles, fail with 5xx storms, reset the connection,
//! send the client to a token service that hangs, or get TLS wrong.
//!
//! Every case must end within the verification deadline (plus slack for a
//! loaded machine) with the expected outcome — `verification_unavailable`
//! when the registry cannot answer, a definite failure when its content
//! does not verify — must never be cached as a pass, must close every
//! connection it opened, and a direct call to the registry client must
//! fail with the expected error kind. Needs no real registry: nothing here
//! skips.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::cases::only;
use crate::support::hostile::{
    Act, Answer, Front, Hostile, Leaf, OCI_INDEX, OCI_MANIFEST, Pki, Req, Site, rss_bytes,
};
use crate::support::server::app_for;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use imagegate::policy::{CaBundle, Outcome, Requirement};
use imagegate::reference::Reference;
use imagegate::server::App;
use imagegate::verify::{
    RegistryConfig, RegistryError, RegistryErrorKind, Repository, Verifier, VerifierConfig,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// The verification deadline of every case.
const DEADLINE: Duration = Duration::from_secs(2);
/// Longest a case may take: the deadline plus slack for a loaded machine.
const LIMIT: Duration = Duration::from_secs(4);
/// How long the client may take to close its connections once it gave up.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Bound on memory growth and on bytes accepted from an endless body.
const MEMORY_BOUND: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Tag,
    Digest,
}

/// A direct call to the registry client, to learn how it classifies the
/// failure.
#[derive(Debug, Clone, Copy)]
enum Probe {
    Resolve,
    Sig,
    Blob,
    Referrers,
    Bundle,
}

type Hostility = Arc<dyn Fn(&Site, &Req) -> Option<Act> + Send + Sync>;
type Tune = Arc<dyn Fn(&mut RegistryConfig) + Send + Sync>;

struct Case {
    name: &'static str,
    by: By,
    expect: Outcome,
    probe: Option<(Probe, RegistryErrorKind)>,
    /// Requests the probe must send, exactly (bounded retries, redirects).
    probe_requests: Option<usize>,
    /// Text the probe's error must contain.
    detail: Option<&'static str>,
    /// Most requests the verification may send.
    max_requests: usize,
    /// Answers that replace the honest registry's (`None`: honest).
    hostile: Hostility,
    /// Changes to the client's settings.
    tune: Option<Tune>,
}

fn case(
    name: &'static str,
    by: By,
    expect: Outcome,
    probe: Option<(Probe, RegistryErrorKind)>,
    hostile: impl Fn(&Site, &Req) -> Option<Act> + Send + Sync + 'static,
) -> Case {
    Case {
        name,
        by,
        expect,
        probe,
        probe_requests: None,
        detail: None,
        max_requests: 12,
        hostile: Arc::new(hostile),
        tune: None,
    }
}

impl Case {
    fn at_most(mut self, requests: usize) -> Case {
        self.max_requests = requests;
        self
    }

    fn probe_sends(mut self, requests: usize) -> Case {
        self.probe_requests = Some(requests);
        self
    }

    fn saying(mut self, detail: &'static str) -> Case {
        self.detail = Some(detail);
        self
    }

    fn tuned(mut self, tune: impl Fn(&mut RegistryConfig) + Send + Sync + 'static) -> Case {
        self.tune = Some(Arc::new(tune));
        self
    }
}

/// What one case measured.
#[derive(Debug)]
struct Row {
    name: &'static str,
    outcome: Outcome,
    elapsed: Duration,
    requests: usize,
    probe: Option<RegistryErrorKind>,
    probe_requests: usize,
    /// The probe's error message.
    error: String,
}

fn sig_only(site: &Site) -> Requirement {
    Requirement::new(site.keys.clone(), true, vec![], None)
}

fn image(site: &Site, addr: &str, by: By) -> String {
    match by {
        By::Tag => format!("{addr}/{}:v1", site.repo),
        By::Digest => format!("{addr}/{}@{}", site.repo, site.image),
    }
}

/// A plain-HTTP registry config for `addr`, with a call timeout longer
/// than the deadline: what cuts a hanging case is the deadline.
fn config(addr: &str) -> RegistryConfig {
    RegistryConfig {
        insecure: vec![addr.to_owned()],
        call_timeout: Duration::from_secs(10),
        ..RegistryConfig::default()
    }
}

/// The honest registry with `hostile`'s answers in front.
async fn serve(site: &Arc<Site>, front: Front, hostile: Hostility) -> Hostile {
    let site = Arc::clone(site);
    Hostile::start_with(front, move |req| {
        hostile(&site, req).unwrap_or_else(|| site.honest(req))
    })
    .await
}

/// Runs one verification against `server` and checks the invariants of
/// every case; then the probe.
async fn measure(site: &Site, server: &Hostile, case: &Case, mut registry: RegistryConfig) -> Row {
    let name = case.name;
    if let Some(tune) = &case.tune {
        tune(&mut registry);
    }
    let v = Verifier::new(VerifierConfig {
        registry: registry.clone(),
        ..VerifierConfig::default()
    });
    let req = sig_only(site);
    let text = image(site, &server.addr, case.by);
    let r = Reference::parse(&text).unwrap();
    let started = Instant::now();
    let got = v.verify(&r, &req, started + DEADLINE).await;
    let elapsed = started.elapsed();
    let requests = server.requests();
    assert!(elapsed < LIMIT, "{name}: took {elapsed:?}");
    // a round cut by the deadline leaves nothing behind
    assert_eq!(
        v.rounds_in_flight(),
        0,
        "{name}: a registry round left in flight"
    );
    assert_eq!(
        got.outcome,
        case.expect,
        "{name}: requests {:?}",
        server.lines()
    );
    assert!(
        requests <= case.max_requests,
        "{name}: {requests} requests: {:?}",
        server.lines()
    );
    // never cached as a pass; an unavailable registry is not cached at all
    let cached = v.cached(&r, &req).map(|c| c.outcome);
    match case.expect {
        Outcome::Verified => assert_eq!(cached, Some(Outcome::Verified), "{name}"),
        Outcome::Unavailable => assert_eq!(cached, None, "{name}"),
        other => assert!(
            cached.is_none() || cached == Some(other),
            "{name}: {cached:?}"
        ),
    }
    let before = server.requests();
    let (probe, error) = match case.probe {
        Some((probe, kind)) => {
            let err = probe_error(site, &server.addr, probe, registry).await;
            assert_eq!(err.kind(), kind, "{name}: {err}: {:?}", server.lines());
            if let Some(detail) = case.detail {
                assert!(err.to_string().contains(detail), "{name}: {err}");
            }
            (Some(err.kind()), err.to_string())
        }
        None => (None, String::new()),
    };
    let probe_requests = server.requests() - before;
    if let Some(n) = case.probe_requests {
        assert_eq!(probe_requests, n, "{name}: {:?}", &server.lines()[before..]);
    }
    assert!(
        server.all_closed_within(CLOSE_GRACE).await,
        "{name}: {} connections still open",
        server.counters.open.load(Ordering::SeqCst)
    );
    Row {
        name,
        outcome: got.outcome,
        elapsed,
        requests,
        probe,
        probe_requests,
        error,
    }
}

/// The error of one direct client call (short timeouts and retry waits,
/// so hangs end quickly here).
async fn probe_error(
    site: &Site,
    addr: &str,
    probe: Probe,
    mut registry: RegistryConfig,
) -> RegistryError {
    registry.call_timeout = Duration::from_secs(1);
    registry.max_retry_wait = Duration::from_millis(10);
    let v = Verifier::new(VerifierConfig {
        registry,
        ..VerifierConfig::default()
    });
    let reg = v.registry();
    let repo = Repository {
        domain: addr.to_owned(),
        path: site.repo.to_owned(),
    };
    let started = Instant::now();
    let err = match probe {
        Probe::Resolve => reg.resolve(&repo, "v1").await.map(drop),
        Probe::Sig => {
            let tag = format!("{}.sig", site.image.tag());
            reg.manifest(&repo, &tag, None).await.map(drop)
        }
        Probe::Blob => reg
            .blob(&repo, site.payload_digest, 64 << 10)
            .await
            .map(drop),
        Probe::Referrers => reg.referrers(&repo, site.image).await.map(drop),
        Probe::Bundle => reg
            .manifest(
                &repo,
                &site.bundle_digest.to_string(),
                Some(site.bundle_digest),
            )
            .await
            .map(drop),
    }
    .expect_err("the probe must fail");
    // retries and redirects are bounded: even the probe ends quickly
    assert!(
        started.elapsed() < LIMIT,
        "probe took {:?}",
        started.elapsed()
    );
    err
}

/// Runs `cases` concurrently (each against its own server), prints the
/// table and fails with every failure at once.
async fn run_table(title: &str, site: &Arc<Site>, cases: Vec<Case>) -> Vec<Row> {
    let mut set = JoinSet::new();
    for (i, case) in only(title, cases, |c| c.name).into_iter().enumerate() {
        let site = Arc::clone(site);
        set.spawn(async move {
            let server = serve(&site, Front::Plain, Arc::clone(&case.hostile)).await;
            let row = measure(&site, &server, &case, config(&server.addr)).await;
            (i, row)
        });
    }
    collect(title, set).await
}

async fn collect(title: &str, mut set: JoinSet<(usize, Row)>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(row) => rows.push(row),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()));
                failures.push(message.unwrap_or_default());
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    rows.sort_by_key(|(i, _)| *i);
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    print_table(title, &rows);
    assert!(failures.is_empty(), "{title}: {failures:#?}");
    rows
}

fn print_table(title: &str, rows: &[Row]) {
    eprintln!("\n{title}");
    for r in rows {
        eprintln!(
            "  {:<64} {:<26} {:>6} ms {:>3} req  {:<16} {}",
            r.name,
            r.outcome.as_str(),
            r.elapsed.as_millis(),
            r.requests,
            r.probe.map_or("-", |k| k.as_str()),
            r.probe
                .map_or(String::new(), |_| format!("{} req", r.probe_requests)),
        );
        if !r.error.is_empty() {
            eprintln!(
                "  {:>66}{}",
                "",
                r.error.chars().take(110).collect::<String>()
            );
        }
    }
}

fn on(req: &Req, path: &str, act: impl FnOnce() -> Act) -> Option<Act> {
    (req.path == path).then(act)
}

/// The honest answer for `req`, as an [`Answer`].
fn honest_answer(site: &Site, req: &Req) -> Answer {
    match site.honest(req) {
        Act::Send(a) => a,
        _ => unreachable!("the honest registry only sends"),
    }
}

/// HEAD of the tag without `Docker-Content-Digest`: the client must GET
/// the manifest to learn the digest.
fn head_without_digest(site: &Site, req: &Req) -> Option<Act> {
    (req.method == "HEAD" && req.path == site.tag_path()).then(|| {
        Act::Send(
            Answer::new(200)
                .header("Content-Type", OCI_MANIFEST)
                .header("Content-Length", site.image_manifest.len().to_string()),
        )
    })
}

fn signatures_only_as_bundle(site: &Site, req: &Req) -> Option<Act> {
    if req.path == site.sig_path() {
        return Some(Act::Send(Answer::new(404)));
    }
    on(req, &site.referrers_path(), || {
        Act::Send(Answer::content(
            OCI_INDEX,
            None,
            &site.referrers_with_bundle(),
        ))
    })
}

fn unavailable(
    name: &'static str,
    by: By,
    probe: Probe,
    kind: RegistryErrorKind,
    hostile: impl Fn(&Site, &Req) -> Option<Act> + Send + Sync + 'static,
) -> Case {
    case(name, by, Outcome::Unavailable, Some((probe, kind)), hostile)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangs_and_trickles_end_at_the_deadline() {
    use RegistryErrorKind::{RateLimited, Timeout};
    let site = Arc::new(Site::load());
    let cases = vec![
        unavailable(
            "HEAD of the tag: never answered",
            By::Tag,
            Probe::Resolve,
            Timeout,
            |s, r| on(r, &s.tag_path(), || Act::Silence),
        ),
        unavailable(
            "GET of the tag: headers, then no body",
            By::Tag,
            Probe::Resolve,
            Timeout,
            |s, r| {
                head_without_digest(s, r)
                    .or_else(|| on(r, &s.tag_path(), || Act::HeadThenHang(honest_answer(s, r))))
            },
        ),
        unavailable(
            ".sig GET: headers, then no body",
            By::Digest,
            Probe::Sig,
            Timeout,
            |s, r| on(r, &s.sig_path(), || Act::HeadThenHang(honest_answer(s, r))),
        ),
        unavailable(
            "referrers GET: headers, then no body",
            By::Digest,
            Probe::Referrers,
            Timeout,
            |s, r| {
                on(r, &s.referrers_path(), || {
                    Act::HeadThenHang(honest_answer(s, r))
                })
            },
        ),
        unavailable(
            "signature blob GET: headers, then no body",
            By::Digest,
            Probe::Blob,
            Timeout,
            |s, r| on(r, &s.blob_path(), || Act::HeadThenHang(honest_answer(s, r))),
        ),
        unavailable(
            "bundle manifest GET: headers, then no body",
            By::Digest,
            Probe::Bundle,
            Timeout,
            |s, r| {
                signatures_only_as_bundle(s, r).or_else(|| {
                    on(r, &s.bundle_path(), || {
                        Act::HeadThenHang(honest_answer(s, r))
                    })
                })
            },
        ),
        unavailable(
            "HEAD of the tag: status line and headers trickled",
            By::Tag,
            Probe::Resolve,
            Timeout,
            |s, r| {
                on(r, &s.tag_path(), || Act::Trickle {
                    answer: honest_answer(s, r),
                    at_once: 0,
                })
            },
        ),
        unavailable(
            ".sig GET: body trickled",
            By::Digest,
            Probe::Sig,
            Timeout,
            |s, r| {
                on(r, &s.sig_path(), || {
                    let answer = honest_answer(s, r);
                    let at_once = answer.head().len();
                    Act::Trickle { answer, at_once }
                })
            },
        ),
        unavailable(
            "signature blob GET: body trickled",
            By::Digest,
            Probe::Blob,
            Timeout,
            |s, r| {
                on(r, &s.blob_path(), || {
                    let answer = honest_answer(s, r);
                    let at_once = answer.head().len();
                    Act::Trickle { answer, at_once }
                })
            },
        ),
        // bounded retries: the first and two retries at most, each
        // waiting at most max_retry_wait (2 s), cut by the deadline
        unavailable(
            "503 + Retry-After: 86400 on every request",
            By::Tag,
            Probe::Resolve,
            RateLimited,
            |_, _| Some(Act::Send(Answer::new(503).header("Retry-After", "86400"))),
        )
        .probe_sends(3)
        .at_most(3),
        unavailable(
            "503 + Retry-After: a date in 2100 on every request",
            By::Tag,
            Probe::Resolve,
            RateLimited,
            |_, _| {
                Some(Act::Send(
                    Answer::new(503).header("Retry-After", "Fri, 01 Jan 2100 00:00:00 GMT"),
                ))
            },
        )
        .probe_sends(3)
        .at_most(3),
        unavailable(
            "401 Bearer whose token realm never answers",
            By::Tag,
            Probe::Resolve,
            Timeout,
            |_, r| {
                if r.path.starts_with("/token") {
                    return Some(Act::Silence);
                }
                Some(Act::Send(bearer_challenge(r)))
            },
        )
        .probe_sends(2)
        .at_most(2),
        unavailable(
            "401 Bearer whose token realm answers headers, then no body",
            By::Tag,
            Probe::Resolve,
            Timeout,
            |_, r| {
                if r.path.starts_with("/token") {
                    return Some(Act::HeadThenHang(
                        Answer::new(200).body(&br#"{"token":"t"}"#[..]),
                    ));
                }
                Some(Act::Send(bearer_challenge(r)))
            },
        )
        .probe_sends(2)
        .at_most(2),
    ];
    let rows = run_table("hangs, trickles and waits (deadline 2 s)", &site, cases).await;
    // a hang is cut by the deadline, not by the call timeout (10 s) nor by
    // the end of the body
    for r in rows.iter().filter(|r| r.probe == Some(Timeout)) {
        assert!(r.elapsed >= DEADLINE - Duration::from_millis(50), "{r:?}");
    }
}

/// A registry that wants a bearer token from `/token` on itself.
fn bearer_challenge(req: &Req) -> Answer {
    if req.authorization.is_some() {
        // a token does not help: refused again
        return Answer::new(401);
    }
    challenge(req, "/token")
}

/// 401 with a Bearer challenge whose realm is `path` on the same host.
fn challenge(req: &Req, path: &str) -> Answer {
    Answer::new(401).header(
        "WWW-Authenticate",
        format!(
            "Bearer realm=\"http://{}{path}\",service=\"hostile\"",
            req.host
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lies_errors_resets_and_redirects() {
    use RegistryErrorKind::{
        Auth, Connect, DigestMismatch, Malformed, Protocol, RateLimited, Status,
    };
    let site = Arc::new(Site::load());
    // another authority for redirects: plain HTTP that is not configured
    // as insecure (it must never be contacted), and a port that refuses
    let sink = Hostile::start(|_| Act::Send(Answer::new(200))).await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let (plain_elsewhere, tls_elsewhere) = (
        format!("http://{}/v2/elsewhere", sink.addr),
        format!("https://{refused}/v2/elsewhere"),
    );
    // storage on another host, where a registry behind a token gate sends
    // blobs: the token must stay with the registry
    let storage = serve(&site, Front::Plain, Arc::new(|_: &Site, _: &Req| None)).await;
    let (storage_url, storage_host) = (format!("http://{}", storage.addr), storage.addr.clone());
    let wrong_shape = br#"{"schemaVersion":2,"layers":{"mediaType":"not a list"}}"#;
    let cases = vec![
        case(
            "honest registry, by tag",
            By::Tag,
            Outcome::Verified,
            None,
            |_, _| None,
        ),
        case(
            "honest registry, by digest",
            By::Digest,
            Outcome::Verified,
            None,
            |_, _| None,
        ),
        case(
            "honest: the signature only as a referrer bundle",
            By::Digest,
            Outcome::Verified,
            None,
            signatures_only_as_bundle,
        ),
        case(
            "honest: blob behind two redirects (the limit is three)",
            By::Digest,
            Outcome::Verified,
            None,
            |s, r| {
                if r.path == s.blob_path() {
                    return Some(Act::Send(Answer::redirect(307, "/hop/1")));
                }
                match r.path.as_str() {
                    "/hop/1" => Some(Act::Send(Answer::redirect(302, "/hop/2"))),
                    "/hop/2" => Some(Act::Send(Answer::content(
                        "application/octet-stream",
                        None,
                        &s.payload,
                    ))),
                    _ => None,
                }
            },
        ),
        case(
            "honest: bearer token, blob redirected to another host",
            By::Digest,
            Outcome::Verified,
            None,
            move |s, r| {
                if r.path.starts_with("/token") {
                    return Some(Act::Send(Answer::content(
                        "application/json",
                        None,
                        br#"{"token":"t","expires_in":300}"#,
                    )));
                }
                if r.authorization.as_deref() != Some("Bearer t") {
                    return Some(Act::Send(challenge(r, "/token")));
                }
                on(r, &s.blob_path(), || {
                    Act::Send(Answer::redirect(
                        307,
                        &format!("{storage_url}{}", s.blob_path()),
                    ))
                })
            },
        )
        .tuned(move |c| c.insecure.push(storage_host.clone())),
        // content that does not parse or does not fit: no signature
        case(
            ".sig manifest is not JSON",
            By::Digest,
            Outcome::SignatureMissing,
            None,
            |s, r| {
                on(r, &s.sig_path(), || {
                    Act::Send(Answer::content(OCI_MANIFEST, None, b"{\"layers\": [{"))
                })
            },
        ),
        case(
            ".sig manifest is JSON of the wrong shape",
            By::Digest,
            Outcome::SignatureMissing,
            None,
            move |s, r| {
                on(r, &s.sig_path(), || {
                    Act::Send(Answer::content(OCI_MANIFEST, None, wrong_shape))
                })
            },
        ),
        case(
            ".sig manifest served as an index (mediaType disagrees)",
            By::Digest,
            Outcome::SignatureMissing,
            None,
            |s, r| {
                on(r, &s.sig_path(), || {
                    Act::Send(Answer::content(OCI_INDEX, None, &s.sig_manifest))
                })
            },
        ),
        // digests that do not match the bytes: definite failures
        case(
            ".sig manifest with a lying Docker-Content-Digest",
            By::Digest,
            Outcome::SignatureMissing,
            Some((Probe::Sig, DigestMismatch)),
            |s, r| {
                on(r, &s.sig_path(), || {
                    Act::Send(Answer::content(
                        OCI_MANIFEST,
                        Some(s.image),
                        &s.sig_manifest,
                    ))
                })
            },
        ),
        case(
            "signature payload: same size, other bytes than its digest",
            By::Digest,
            Outcome::SignatureInvalid,
            Some((Probe::Blob, DigestMismatch)),
            |s, r| {
                on(r, &s.blob_path(), || {
                    let mut tampered = s.payload.clone();
                    let at = tampered.iter().position(|b| *b == b'a').unwrap();
                    tampered[at] = b'b';
                    Act::Send(Answer::content("application/octet-stream", None, &tampered))
                })
            },
        ),
        case(
            "signature payload: another size than its descriptor",
            By::Digest,
            Outcome::SignatureInvalid,
            Some((Probe::Blob, DigestMismatch)),
            |s, r| {
                on(r, &s.blob_path(), || {
                    let mut longer = s.payload.clone();
                    longer.push(b'\n');
                    Act::Send(Answer::content("application/octet-stream", None, &longer))
                })
            },
        ),
        case(
            "tag GET: Docker-Content-Digest differs from the bytes",
            By::Tag,
            Outcome::SignatureInvalid,
            Some((Probe::Resolve, DigestMismatch)),
            |s, r| {
                head_without_digest(s, r).or_else(|| {
                    on(r, &s.tag_path(), || {
                        Act::Send(Answer::content(
                            OCI_MANIFEST,
                            Some(s.payload_digest),
                            &s.image_manifest,
                        ))
                    })
                })
            },
        ),
        case(
            "bundle manifest does not match the digest it is listed by",
            By::Digest,
            Outcome::SignatureMissing,
            Some((Probe::Bundle, DigestMismatch)),
            |s, r| {
                signatures_only_as_bundle(s, r).or_else(|| {
                    on(r, &s.bundle_path(), || {
                        let mut other = s.bundle_manifest.clone();
                        other.push(b' ');
                        Act::Send(Answer::content(OCI_MANIFEST, None, &other))
                    })
                })
            },
        ),
        // nonsense the client cannot judge: unavailable
        unavailable(
            "HEAD of the tag: malformed Docker-Content-Digest",
            By::Tag,
            Probe::Resolve,
            Malformed,
            |s, r| {
                on(r, &s.tag_path(), || {
                    Act::Send(Answer::new(200).header("Docker-Content-Digest", "sha256:zz"))
                })
            },
        ),
        // the `.sig` signature verified: a referrers listing that cannot be
        // read does not undo it (it is still probed as malformed)
        case(
            "referrers index is not JSON",
            By::Digest,
            Outcome::Verified,
            Some((Probe::Referrers, Malformed)),
            |s, r| {
                on(r, &s.referrers_path(), || {
                    Act::Send(Answer::content(OCI_INDEX, None, b"<html>"))
                })
            },
        ),
        unavailable(
            "500 on every request",
            By::Tag,
            Probe::Resolve,
            Status,
            |_, _| Some(Act::Send(Answer::new(500))),
        )
        .probe_sends(1)
        .at_most(1),
        unavailable(".sig GET: 500", By::Digest, Probe::Sig, Status, |s, r| {
            on(r, &s.sig_path(), || Act::Send(Answer::new(500)))
        }),
        unavailable(
            "429 without Retry-After on every request",
            By::Tag,
            Probe::Resolve,
            RateLimited,
            |_, _| Some(Act::Send(Answer::new(429))),
        )
        .probe_sends(3)
        .at_most(3),
        unavailable(
            ".sig GET: reset mid-body",
            By::Digest,
            Probe::Sig,
            Protocol,
            |s, r| on(r, &s.sig_path(), || Act::ResetMidBody(honest_answer(s, r))),
        ),
        unavailable(
            "signature blob GET: reset mid-body",
            By::Digest,
            Probe::Blob,
            Protocol,
            |s, r| on(r, &s.blob_path(), || Act::ResetMidBody(honest_answer(s, r))),
        ),
        // redirects
        unavailable(
            ".sig GET: 302 to itself",
            By::Digest,
            Probe::Sig,
            Protocol,
            |s, r| {
                on(r, &s.sig_path(), || {
                    Act::Send(Answer::redirect(302, &s.sig_path()))
                })
            },
        )
        .probe_sends(4)
        // .sig (followed 3 times), the referrers API and the fallback tag
        .at_most(6),
        unavailable(
            "signature blob GET: a chain of ten redirects",
            By::Digest,
            Probe::Blob,
            Protocol,
            |s, r| {
                if r.path == s.blob_path() {
                    return Some(Act::Send(Answer::redirect(302, "/hop/1")));
                }
                let n: u32 = r.path.strip_prefix("/hop/")?.parse().ok()?;
                Some(Act::Send(if n < 10 {
                    Answer::redirect(302, &format!("/hop/{}", n + 1))
                } else {
                    Answer::content("application/octet-stream", None, &s.payload)
                }))
            },
        )
        .probe_sends(4)
        // .sig, referrers API, fallback tag, the blob and three hops
        .at_most(7),
        unavailable(
            ".sig GET: redirect without Location",
            By::Digest,
            Probe::Sig,
            Protocol,
            |s, r| on(r, &s.sig_path(), || Act::Send(Answer::new(302))),
        )
        .probe_sends(1),
        unavailable(
            "signature blob GET: redirect to plain HTTP on another host",
            By::Digest,
            Probe::Blob,
            Protocol,
            move |s, r| {
                on(r, &s.blob_path(), || {
                    Act::Send(Answer::redirect(307, &plain_elsewhere))
                })
            },
        )
        .probe_sends(1),
        unavailable(
            "signature blob GET: redirect to HTTPS on a host that refuses",
            By::Digest,
            Probe::Blob,
            Connect,
            move |s, r| {
                on(r, &s.blob_path(), || {
                    Act::Send(Answer::redirect(307, &tls_elsewhere))
                })
            },
        )
        .probe_sends(1),
        // authentication that cannot succeed
        unavailable(
            "401 Bearer, and 401 again with the token",
            By::Tag,
            Probe::Resolve,
            Auth,
            |_, r| {
                if r.path.starts_with("/token") {
                    return Some(Act::Send(Answer::content(
                        "application/json",
                        None,
                        br#"{"token":"t","expires_in":300}"#,
                    )));
                }
                Some(Act::Send(bearer_challenge(r)))
            },
        )
        .probe_sends(3)
        .at_most(3),
        unavailable(
            "401 Bearer whose token realm redirects to itself",
            By::Tag,
            Probe::Resolve,
            Auth,
            |_, r| {
                if r.path.starts_with("/token") {
                    return Some(Act::Send(Answer::redirect(302, &r.path)));
                }
                Some(Act::Send(bearer_challenge(r)))
            },
        )
        .probe_sends(2)
        .at_most(2),
        unavailable(
            "401 Bearer whose realm is the registry's own 401",
            By::Tag,
            Probe::Resolve,
            Auth,
            |_, r| Some(Act::Send(challenge(r, "/v2/"))),
        )
        .probe_sends(2)
        .at_most(2),
        unavailable(
            "401 Bearer whose realm is not a URL",
            By::Tag,
            Probe::Resolve,
            Auth,
            |_, _| {
                Some(Act::Send(
                    Answer::new(401).header("WWW-Authenticate", "Bearer realm=\"\\x7f nope\""),
                ))
            },
        )
        .probe_sends(1)
        .at_most(1),
    ];
    run_table("lies, errors, resets and redirects", &site, cases).await;
    assert_eq!(storage.count(&site.blob_path()), 1, "{:?}", storage.lines());
    let leaked = storage
        .counters
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.authorization.is_some())
        .count();
    assert_eq!(leaked, 0, "a token was sent to another host");
    assert_eq!(
        sink.counters.connections.load(Ordering::SeqCst),
        0,
        "a redirect to plain HTTP on an unconfigured host was followed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigabyte_bodies_stop_at_the_size_cap() {
    use RegistryErrorKind::TooLarge;
    let site = Arc::new(Site::load());
    let gib = Some(1u64 << 30);
    let endless = |length| {
        move || Act::Endless {
            content_type: OCI_MANIFEST,
            length,
        }
    };
    let cases = vec![
        unavailable(
            ".sig GET: Content-Length 1 GiB",
            By::Digest,
            Probe::Sig,
            TooLarge,
            move |s, r| on(r, &s.sig_path(), endless(gib)),
        ),
        unavailable(
            ".sig GET: chunked, endless",
            By::Digest,
            Probe::Sig,
            TooLarge,
            move |s, r| on(r, &s.sig_path(), endless(None)),
        ),
        unavailable(
            "signature blob GET: Content-Length 1 GiB",
            By::Digest,
            Probe::Blob,
            TooLarge,
            move |s, r| on(r, &s.blob_path(), endless(gib)),
        ),
        unavailable(
            "signature blob GET: chunked, endless",
            By::Digest,
            Probe::Blob,
            TooLarge,
            move |s, r| on(r, &s.blob_path(), endless(None)),
        ),
        case(
            "referrers GET: chunked, endless",
            By::Digest,
            Outcome::Verified,
            Some((Probe::Referrers, TooLarge)),
            move |s, r| on(r, &s.referrers_path(), endless(None)),
        ),
        unavailable(
            "tag GET: chunked, endless",
            By::Tag,
            Probe::Resolve,
            TooLarge,
            move |s, r| head_without_digest(s, r).or_else(|| on(r, &s.tag_path(), endless(None))),
        ),
        unavailable(
            "404 announcing a 1 GiB body",
            By::Digest,
            Probe::Sig,
            TooLarge,
            |s, r| {
                on(r, &s.sig_path(), || {
                    Act::HeadThenHang(
                        Answer::new(404).header("Content-Length", (1u64 << 30).to_string()),
                    )
                })
            },
        ),
        unavailable(
            "401 Bearer whose token service sends an endless body",
            By::Tag,
            Probe::Resolve,
            TooLarge,
            move |_, r| {
                if r.path.starts_with("/token") {
                    return Some(endless(None)());
                }
                Some(Act::Send(bearer_challenge(r)))
            },
        )
        .probe_sends(2),
    ];
    // warm up (root store, allocator arenas), then watch the resident set
    // while the cases run one after the other
    let warm = serve(&site, Front::Plain, Arc::new(|_: &Site, _: &Req| None)).await;
    let control = case("warm-up", By::Digest, Outcome::Verified, None, |_, _| None);
    measure(&site, &warm, &control, config(&warm.addr)).await;
    let baseline = rss_bytes();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampler = {
        let peak = Arc::clone(&peak);
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_bytes(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut rows = Vec::new();
    for case in only("gigabyte and endless bodies", cases, |c| c.name) {
        let server = serve(&site, Front::Plain, Arc::clone(&case.hostile)).await;
        let row = measure(&site, &server, &case, config(&server.addr)).await;
        let written = server.counters.endless_bytes.load(Ordering::SeqCst);
        eprintln!(
            "  {}: the registry wrote {} KiB of body",
            case.name,
            written >> 10
        );
        assert!(
            written < MEMORY_BOUND,
            "{}: {written} bytes written",
            case.name
        );
        rows.push(row);
    }
    sampler.abort();
    let grown = peak.load(Ordering::SeqCst).saturating_sub(baseline);
    print_table("gigabyte and endless bodies", &rows);
    eprintln!(
        "  resident set: baseline {} MiB, peak growth {} KiB",
        baseline >> 20,
        grown >> 10
    );
    // (a panic elsewhere in this binary, symbolizing its backtrace, grows
    // the resident set too: look at the other failures first)
    assert!(grown < MEMORY_BOUND, "resident set grew by {grown} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_unavailable() {
    use RegistryErrorKind::{Connect, Timeout};
    let site = Arc::new(Site::load());
    let pki = Pki::generate();
    let ca = CaBundle::from_pem(&pki.ca).unwrap();
    let tls = |leaf| Front::Tls(pki.acceptor(leaf));
    let honest = |_: &Site, _: &Req| None;
    let rows: Vec<(Case, Front)> = vec![
        (
            case(
                "TLS: certificate from the trusted CA",
                By::Tag,
                Outcome::Verified,
                None,
                honest,
            ),
            tls(Leaf::Good),
        ),
        (
            unavailable(
                "TLS: self-signed certificate (unknown CA)",
                By::Tag,
                Probe::Resolve,
                Connect,
                honest,
            )
            .saying("UnknownIssuer"),
            tls(Leaf::SelfSigned),
        ),
        (
            unavailable(
                "TLS: expired certificate",
                By::Tag,
                Probe::Resolve,
                Connect,
                honest,
            )
            .saying("certificate expired"),
            tls(Leaf::Expired),
        ),
        (
            unavailable(
                "TLS: certificate for another name",
                By::Tag,
                Probe::Resolve,
                Connect,
                honest,
            )
            .saying("not valid for name"),
            tls(Leaf::WrongName),
        ),
        (
            unavailable(
                "TLS expected, plain HTTP spoken",
                By::Tag,
                Probe::Resolve,
                Connect,
                honest,
            )
            .saying("InvalidContentType"),
            Front::Plain,
        ),
        (
            unavailable(
                "TLS: server reads the ClientHello, says nothing",
                By::Tag,
                Probe::Resolve,
                Timeout,
                honest,
            ),
            Front::StalledHandshake(b""),
        ),
        // a record header announcing a ServerHello that never comes
        (
            unavailable(
                "TLS: server stalls inside its first record",
                By::Tag,
                Probe::Resolve,
                Timeout,
                honest,
            ),
            Front::StalledHandshake(&[0x16, 0x03, 0x03, 0x00, 0x7a, 0x02]),
        ),
    ];
    let mut set = JoinSet::new();
    for (i, (c, front)) in rows.into_iter().enumerate() {
        let (site, ca) = (Arc::clone(&site), ca.clone());
        set.spawn(async move {
            let server = serve(&site, front, Arc::clone(&c.hostile)).await;
            // HTTPS only, trusting the Mozilla roots and the test CA
            let registry = RegistryConfig {
                insecure: Vec::new(),
                ca,
                ..config(&server.addr)
            };
            (i, measure(&site, &server, &c, registry).await)
        });
    }
    collect("TLS", set).await;
}

const KEY: &str = "tests/fixtures/verify/keys/cosign.pub";

fn policy(addr: &str, on_error: &str) -> String {
    format!(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nspec:\n  verify:\n    - images: [\"{addr}/**\"]\n      keys:\n        - file: {KEY}\n      require:\n        signature: true\n  registries:\n    insecure: [\"{addr}\"]\n  verification:\n    timeout: 2s\n    onError: {on_error}\n"
    )
}

async fn review(app: &App, image: &str) -> (Value, Duration) {
    let body = json!({"apiVersion": "imagepolicy.k8s.io/v1alpha1", "kind": "ImageReview",
        "spec": {"containers": [{"image": image}], "namespace": "shop"}});
    let request = Request::builder()
        .method(Method::POST)
        .uri("/imagepolicy")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let started = Instant::now();
    let response = app.handle(request).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (serde_json::from_slice(&bytes).unwrap(), elapsed)
}

async fn decisions(app: &App, reason: &str) -> f64 {
    let request = Request::builder()
        .uri("/metrics")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let bytes = app
        .handle(request)
        .await
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let series =
        format!("imagegate_image_decisions_total{{decision=\"deny\",reason=\"{reason}\"}}");
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(series.as_str())
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_decides_only_for_an_unavailable_registry() {
    let site = Arc::new(Site::load());
    // a registry that keeps asking to come back tomorrow
    let stalling = serve(
        &site,
        Front::Plain,
        Arc::new(|_: &Site, _: &Req| {
            Some(Act::Send(Answer::new(503).header("Retry-After", "86400")))
        }),
    )
    .await;
    let image = format!("{}/{}:v1", stalling.addr, site.repo);
    let closed = app_for(&policy(&stalling.addr, "deny"));
    let (body, elapsed) = review(&closed, &image).await;
    assert!(elapsed < LIMIT, "{elapsed:?}");
    assert_eq!(body["status"]["allowed"], false, "{body}");
    let reason = body["status"]["reason"].as_str().unwrap();
    assert!(reason.contains("could not be verified"), "{reason}");
    assert_eq!(decisions(&closed, "verification_unavailable").await, 1.0);

    let open = app_for(&policy(&stalling.addr, "allow"));
    let (body, elapsed) = review(&open, &image).await;
    assert!(elapsed < LIMIT, "{elapsed:?}");
    assert_eq!(body["status"]["allowed"], true, "{body}");
    let warnings = body["status"]["auditAnnotations"]["warnings"]
        .as_str()
        .unwrap_or("");
    assert!(warnings.contains("onError is allow"), "{body}");
    assert_eq!(decisions(&open, "verification_unavailable").await, 1.0);
    eprintln!("policy: 503 storm, onError deny and allow, answered in {elapsed:?}");

    // content that does not match its digest is a definite failure, which
    // onError: allow does not admit
    let lying = serve(
        &site,
        Front::Plain,
        Arc::new(|s: &Site, r: &Req| {
            on(r, &s.blob_path(), || {
                let mut tampered = s.payload.clone();
                let last = tampered.len() - 2;
                tampered[last] ^= 1;
                Act::Send(Answer::content("application/octet-stream", None, &tampered))
            })
        }),
    )
    .await;
    let open = app_for(&policy(&lying.addr, "allow"));
    let (body, elapsed) = review(&open, &format!("{}/{}:v1", lying.addr, site.repo)).await;
    assert!(elapsed < LIMIT, "{elapsed:?}");
    assert_eq!(body["status"]["allowed"], false, "{body}");
    assert_eq!(decisions(&open, "signature_invalid").await, 1.0, "{body}");
    assert_eq!(decisions(&open, "verification_unavailable").await, 0.0);
}

/// The leak check of every case is not vacuous: a connection the client
/// keeps open is noticed, and its close is seen.
#[tokio::test]
async fn the_harness_notices_a_connection_left_open() {
    let site = Arc::new(Site::load());
    let server = serve(
        &site,
        Front::Plain,
        Arc::new(|s: &Site, r: &Req| {
            on(r, &s.sig_path(), || Act::HeadThenHang(honest_answer(s, r)))
        }),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n",
        site.sig_path(),
        server.addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 4096];
    let n = stream.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(!server.all_closed_within(Duration::from_millis(300)).await);
    drop(stream);
    assert!(server.all_closed_within(CLOSE_GRACE).await);
}

//! Hot reload of the policy file and of the TLS files, on file change and
//! on SIGHUP.
//!
//! Every file the policy names (key files, registry CA and auth files) is
//! watched too: a change to one recompiles the policy (a new generation),
//! so a key replaced in its Secret is no longer trusted, without a restart.
//!
//! One task owns every reload, so reloads never race each other: a new
//! policy is compiled off the request path and put in force with one store
//! into the server's single `ArcSwap<Engine>`, with the next generation
//! number. A file that cannot be read or compiled is rejected: the previous
//! policy (or certificate) keeps serving, the error is logged with its
//! location, and `imagegate_policy_reloads_total{result="error"}` (or the
//! TLS counter) counts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, PolicyFileError, read_policy_file};
use crate::metrics::ReloadResult;
use crate::policy::{CompileErrors, Snapshot};

use super::config::{PolicySource, Signals};
use super::routes::App;
use super::tls::TlsState;
use super::trust::TrustRefresh;
use super::watch::FileWatch;

/// Why a policy file could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read, or is larger than
    /// [`crate::policy::MAX_POLICY_BYTES`] (the limit of every command).
    #[error(transparent)]
    File(#[from] PolicyFileError),
    /// The policy does not compile; every error is listed with its location.
    #[error("policy file {} is invalid: {}", path.display(), one_line(errors))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every compile error, with line and column.
        errors: CompileErrors,
    },
    /// The compile could not run (its thread could not start, or failed).
    #[error("policy file {}: the compile did not finish", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Joins compile errors on one line (`line L, column C: msg; ...`).
fn one_line(errors: &CompileErrors) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Reads the policy file off the runtime's threads (bounded by the one
/// policy size limit).
async fn read_policy(path: &Path) -> Result<String, PolicyError> {
    let owned = path.to_owned();
    match tokio::task::spawn_blocking(move || read_policy_file(&owned)).await {
        Ok(read) => read.map_err(PolicyError::from),
        Err(join) => Err(PolicyError::File(PolicyFileError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(join.to_string()),
        })),
    }
}

/// The SHA-256 of a policy text: what a reload compares to tell a changed
/// file from a touched one (the text itself, megabytes for a large policy,
/// is not kept).
pub(crate) type TextDigest = [u8; 32];

fn digest(text: &str) -> TextDigest {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Loads the start-up policy (generation 1) and returns it with the digest
/// of its text.
pub(crate) async fn load_initial(
    source: &PolicySource,
) -> Result<(Snapshot, Option<TextDigest>), PolicyError> {
    match source {
        PolicySource::Builtin => Ok((Snapshot::builtin().with_generation(1), None)),
        PolicySource::File(path) => {
            let text = read_policy(path).await?;
            let text_digest = digest(&text);
            let compiled = super::memory::on_own_thread(move || load::compile(&text))
                .await
                .map_err(|source| PolicyError::Compile {
                    path: path.clone(),
                    source,
                })?;
            let snapshot = compiled.map_err(|errors| PolicyError::Invalid {
                path: path.clone(),
                errors,
            })?;
            Ok((snapshot.with_generation(1), Some(text_digest)))
        }
    }
}

/// Resolves at each SIGHUP; never when signals are not handled.
async fn hangup(hup: &mut Option<tokio::signal::unix::Signal>) {
    if let Some(hup) = hup.as_mut()
        && hup.recv().await.is_some()
    {
        return;
    }
    std::future::pending::<()>().await;
}

/// What made a reload happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    FileChanged,
    /// A key, CA or auth file the policy names changed.
    NamedFileChanged,
    /// A trusted root was refreshed over TUF.
    TrustRootRefreshed,
    Sighup,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::FileChanged => "file changed",
            Cause::NamedFileChanged => "a file the policy names changed",
            Cause::TrustRootRefreshed => "a trusted root was refreshed over TUF",
            Cause::Sighup => "SIGHUP",
        }
    }
}

/// The reload task's state.
pub(crate) struct Reloader {
    app: Arc<App>,
    policy: Option<PolicyFile>,
    tls: Option<Arc<TlsState>>,
    watch: FileWatch,
    /// The policy and TLS files, and what each is.
    fixed: Vec<(PathBuf, Watched)>,
    /// The files the policy in force names (keys, CA, auth).
    named: Vec<PathBuf>,
    /// What each watched path is, by index.
    watched: Vec<Watched>,
    poll: Duration,
    debounce: Duration,
    hup: Option<tokio::signal::unix::Signal>,
    /// The TUF refresh tasks of the policy in force.
    trust: TrustRefresh,
}

struct PolicyFile {
    path: PathBuf,
    /// Digest of the last text looked at (good or bad), so that events
    /// which do not change the content do not bump the generation.
    last_digest: Option<TextDigest>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Policy,
    /// A file the policy names.
    Named,
    Certificate,
    ClientCa,
}

impl Reloader {
    /// Sets up watching (and the SIGHUP handler, so that a SIGHUP never
    /// kills the process, even when there is nothing to reload).
    pub(crate) fn new(
        app: Arc<App>,
        source: &PolicySource,
        initial_digest: Option<TextDigest>,
        tls: Option<Arc<TlsState>>,
        signals: Signals,
        poll: Duration,
        debounce: Duration,
    ) -> std::io::Result<Reloader> {
        let mut fixed = Vec::new();
        let policy = match source {
            PolicySource::Builtin => None,
            PolicySource::File(path) => {
                fixed.push((path.clone(), Watched::Policy));
                Some(PolicyFile {
                    path: path.clone(),
                    last_digest: initial_digest,
                })
            }
        };
        if let Some(tls) = &tls {
            fixed.push((tls.files.cert.clone(), Watched::Certificate));
            fixed.push((tls.files.key.clone(), Watched::Certificate));
            if let Some(ca) = &tls.files.client_ca {
                fixed.push((ca.clone(), Watched::ClientCa));
            }
        }
        let named = app.engine().policy().files().to_vec();
        let (watch, watched) = watch_all(&fixed, &named, poll, debounce);
        let hup = match signals {
            Signals::Handle => Some(tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            )?),
            Signals::Ignore => None,
        };
        let mut trust = TrustRefresh::new(
            app.metrics().trust_root_refreshes(),
            app.metrics().trust_root_sources_failing(),
        );
        trust.sync(app.engine().policy());
        Ok(Reloader {
            app,
            policy,
            tls,
            watch,
            fixed,
            named,
            watched,
            poll,
            debounce,
            hup,
            trust,
        })
    }

    /// Watches the files the policy in force names, when they differ from
    /// those watched so far.
    fn rewatch(&mut self) {
        let named = self.app.engine().policy().files().to_vec();
        if named == self.named {
            return;
        }
        let (watch, watched) = watch_all(&self.fixed, &named, self.poll, self.debounce);
        self.watch = watch;
        self.watched = watched;
        self.named = named;
    }

    /// Reloads on every change and SIGHUP until dropped.
    pub(crate) async fn run(mut self) {
        loop {
            let (policy, cert, ca, cause) = tokio::select! {
                changed = self.watch.changed() => {
                    let has = |w| changed.iter().any(|&i| self.watched.get(i) == Some(&w));
                    let cause = if has(Watched::Named) && !has(Watched::Policy) {
                        Cause::NamedFileChanged
                    } else {
                        Cause::FileChanged
                    };
                    (
                        has(Watched::Policy) || has(Watched::Named),
                        has(Watched::Certificate),
                        has(Watched::ClientCa),
                        cause,
                    )
                }
                () = hangup(&mut self.hup) => (true, true, true, Cause::Sighup),
                () = self.trust.changed() => (true, false, false, Cause::TrustRootRefreshed),
            };
            if cause == Cause::Sighup {
                // Every TUF source is refreshed now (restarted by the sync
                // after the reload below).
                self.trust.restart();
            }
            if cause == Cause::Sighup && self.policy.is_none() && self.tls.is_none() {
                tracing::info!("SIGHUP: built-in policy and no TLS files, nothing to reload");
            }
            if policy {
                self.reload_policy(cause).await;
                self.rewatch();
                self.trust.sync(self.app.engine().policy());
            }
            if cert {
                self.reload_certificate(cause);
            }
            if ca {
                self.reload_client_ca(cause);
            }
        }
    }

    async fn reload_policy(&mut self, cause: Cause) {
        let Some(file) = self.policy.as_mut() else {
            return;
        };
        let metrics = self.app.metrics();
        let current = self.app.engine().policy().generation();
        let text = match read_policy(&file.path).await {
            Ok(text) => text,
            Err(error) => {
                metrics.observe_policy_reload(ReloadResult::Error);
                tracing::error!(
                    cause = cause.as_str(),
                    generation = current,
                    error = %error,
                    source = %std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default(),
                    "policy reload failed, previous policy stays in force"
                );
                return;
            }
        };
        // An unchanged policy text is skipped, unless a file it names changed.
        let text_digest = digest(&text);
        if cause == Cause::FileChanged && file.last_digest == Some(text_digest) {
            tracing::debug!(policy = %file.path.display(), "policy file touched but unchanged");
            return;
        }
        let generation = current.saturating_add(1);
        let compiled = super::memory::on_own_thread({
            let app = Arc::clone(&self.app);
            let roots = self.trust.roots();
            move || {
                let roots_generation = roots.generation();
                let snapshot = load::compile_with_roots(&text, &roots)?;
                drop(text);
                // The previous policy is dropped here too, where the
                // compile's garbage is, when nothing else holds it.
                app.swap_policy(snapshot.with_generation(generation));
                roots.applied(roots_generation);
                Ok(())
            }
        })
        .await;
        // A text that was compiled (into a policy or into errors) is not
        // compiled again until it changes; one whose compile did not run
        // is tried again at the next event.
        if compiled.is_ok() {
            file.last_digest = Some(text_digest);
        }
        match compiled {
            Ok(Ok(())) => {
                metrics.observe_policy_reload(ReloadResult::Success);
                tracing::info!(
                    policy = %file.path.display(),
                    cause = cause.as_str(),
                    generation,
                    "policy reloaded"
                );
            }
            Ok(Err(errors)) => {
                metrics.observe_policy_reload(ReloadResult::Error);
                let error = PolicyError::Invalid {
                    path: file.path.clone(),
                    errors,
                };
                tracing::error!(
                    cause = cause.as_str(),
                    generation = current,
                    error = %error,
                    "policy rejected, previous policy stays in force"
                );
            }
            Err(e) => {
                metrics.observe_policy_reload(ReloadResult::Error);
                tracing::error!(
                    cause = cause.as_str(),
                    generation = current,
                    error = %e,
                    "policy reload failed, previous policy stays in force"
                );
            }
        }
    }

    fn reload_certificate(&self, cause: Cause) {
        let Some(tls) = &self.tls else { return };
        let metrics = self.app.metrics();
        match tls.reload_certificate() {
            Ok(()) => {
                metrics.observe_tls_reload(ReloadResult::Success);
                tracing::info!(
                    cert = %tls.files.cert.display(),
                    cause = cause.as_str(),
                    "serving certificate reloaded"
                );
            }
            Err(error) => {
                metrics.observe_tls_reload(ReloadResult::Error);
                tracing::error!(
                    cause = cause.as_str(),
                    error = %error,
                    source = %std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default(),
                    "certificate reload failed, previous certificate stays in force"
                );
            }
        }
    }

    fn reload_client_ca(&self, cause: Cause) {
        let Some(tls) = &self.tls else { return };
        if tls.files.client_ca.is_none() {
            return;
        }
        let metrics = self.app.metrics();
        match tls.reload_client_ca() {
            Ok(()) => {
                metrics.observe_tls_reload(ReloadResult::Success);
                tracing::info!(cause = cause.as_str(), "client CA reloaded");
            }
            Err(error) => {
                metrics.observe_tls_reload(ReloadResult::Error);
                tracing::error!(
                    cause = cause.as_str(),
                    error = %error,
                    source = %std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default(),
                    "client CA reload failed, previous CA stays in force"
                );
            }
        }
    }
}

/// One [`FileWatch`] over the policy and TLS files (`fixed`) and the files
/// the policy names, with what each index is.
fn watch_all(
    fixed: &[(PathBuf, Watched)],
    named: &[PathBuf],
    poll: Duration,
    debounce: Duration,
) -> (FileWatch, Vec<Watched>) {
    let mut paths = Vec::with_capacity(fixed.len() + named.len());
    let mut watched = Vec::with_capacity(fixed.len() + named.len());
    for (path, what) in fixed {
        paths.push(path.clone());
        watched.push(*what);
    }
    for path in named {
        paths.push(path.clone());
        watched.push(Watched::Named);
    }
    (FileWatch::new(paths, poll, debounce), watched)
}

//! Hot reload of the policy file and of the TLS files, on file change and
//! on SIGHUP.
//!
//! One task owns every reload, so reloads never race each other: a new
//! policy is compiled off the request path and put in force with one store
//! into the server's single `ArcSwap<Snapshot>`, with the next generation
//! number. A file that cannot be read or compiled is rejected: the previous
//! policy (or certificate) keeps serving, the error is logged with its
//! location, and `imagegate_policy_reloads_total{result="error"}` (or the
//! TLS counter) counts it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::ReloadResult;
use crate::policy::{CompileErrors, Snapshot};

use super::config::{PolicySource, Signals};
use super::routes::App;
use super::tls::TlsState;
use super::watch::FileWatch;

/// Policy files larger than this are refused: a policy is a few KiB, and a
/// runaway file must not take the process's memory.
const MAX_POLICY_BYTES: u64 = 4 * 1024 * 1024;

/// Why a policy file could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than the limit.
    #[error("policy file {} is larger than {MAX_POLICY_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The policy does not compile; every error is listed with its location.
    #[error("policy file {} is invalid: {}", path.display(), one_line(errors))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every compile error, with line and column.
        errors: CompileErrors,
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

async fn read_policy(path: &Path) -> Result<String, PolicyError> {
    let read_error = |source| PolicyError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = tokio::fs::metadata(path).await.map_err(read_error)?;
    if meta.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = tokio::fs::read_to_string(path).await.map_err(read_error)?;
    // The file may have grown between the two calls.
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// Loads the start-up policy (generation 1) and returns it with its text.
pub(crate) async fn load_initial(
    source: &PolicySource,
) -> Result<(Snapshot, Option<String>), PolicyError> {
    match source {
        PolicySource::Builtin => Ok((Snapshot::builtin().with_generation(1), None)),
        PolicySource::File(path) => {
            let text = read_policy(path).await?;
            let snapshot = Snapshot::from_yaml(&text).map_err(|errors| PolicyError::Invalid {
                path: path.clone(),
                errors,
            })?;
            Ok((snapshot.with_generation(1), Some(text)))
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
    Sighup,
}

impl Cause {
    fn as_str(self) -> &'static str {
        match self {
            Cause::FileChanged => "file changed",
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
    /// What each watched path is, by index.
    watched: Vec<Watched>,
    hup: Option<tokio::signal::unix::Signal>,
}

struct PolicyFile {
    path: PathBuf,
    /// Text of the last file looked at (good or bad), so that events which
    /// do not change the content do not bump the generation.
    last_text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Watched {
    Policy,
    Certificate,
    ClientCa,
}

impl Reloader {
    /// Sets up watching (and the SIGHUP handler, so that a SIGHUP never
    /// kills the process, even when there is nothing to reload).
    pub(crate) fn new(
        app: Arc<App>,
        source: &PolicySource,
        initial_text: Option<String>,
        tls: Option<Arc<TlsState>>,
        signals: Signals,
        poll: Duration,
        debounce: Duration,
    ) -> std::io::Result<Reloader> {
        let mut paths = Vec::new();
        let mut watched = Vec::new();
        let policy = match source {
            PolicySource::Builtin => None,
            PolicySource::File(path) => {
                paths.push(path.clone());
                watched.push(Watched::Policy);
                Some(PolicyFile {
                    path: path.clone(),
                    last_text: initial_text,
                })
            }
        };
        if let Some(tls) = &tls {
            paths.push(tls.files.cert.clone());
            watched.push(Watched::Certificate);
            paths.push(tls.files.key.clone());
            watched.push(Watched::Certificate);
            if let Some(ca) = &tls.files.client_ca {
                paths.push(ca.clone());
                watched.push(Watched::ClientCa);
            }
        }
        let hup = match signals {
            Signals::Handle => Some(tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            )?),
            Signals::Ignore => None,
        };
        Ok(Reloader {
            app,
            policy,
            tls,
            watch: FileWatch::new(paths, poll, debounce),
            watched,
            hup,
        })
    }

    /// Reloads on every change and SIGHUP until dropped.
    pub(crate) async fn run(mut self) {
        loop {
            let (policy, cert, ca, cause) = tokio::select! {
                changed = self.watch.changed() => {
                    let has = |w| changed.iter().any(|&i| self.watched.get(i) == Some(&w));
                    (
                        has(Watched::Policy),
                        has(Watched::Certificate),
                        has(Watched::ClientCa),
                        Cause::FileChanged,
                    )
                }
                () = hangup(&mut self.hup) => (true, true, true, Cause::Sighup),
            };
            if cause == Cause::Sighup && self.policy.is_none() && self.tls.is_none() {
                tracing::info!("SIGHUP: built-in policy and no TLS files, nothing to reload");
            }
            if policy {
                self.reload_policy(cause).await;
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
        let current = self.app.policy().generation();
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
        if cause == Cause::FileChanged && file.last_text.as_deref() == Some(text.as_str()) {
            tracing::debug!(policy = %file.path.display(), "policy file touched but unchanged");
            return;
        }
        let compiled = Snapshot::from_yaml(&text);
        file.last_text = Some(text);
        match compiled {
            Ok(snapshot) => {
                let generation = current.saturating_add(1);
                self.app.swap_policy(snapshot.with_generation(generation));
                metrics.observe_policy_reload(ReloadResult::Success);
                tracing::info!(
                    policy = %file.path.display(),
                    cause = cause.as_str(),
                    generation,
                    "policy reloaded"
                );
            }
            Err(errors) => {
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

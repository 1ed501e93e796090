//! What starts a drain: SIGTERM, SIGINT or a [`ShutdownHandle`].
//!
//! The drain itself (readiness off, shutdown delay, closing listeners, the
//! grace period) is sequenced by [`Server::serve`](super::Server::serve);
//! this module only says when and why it begins.

use std::sync::Arc;

use tokio::sync::watch;

use super::config::Signals;

/// Starts a graceful shutdown of a running server from code (the same path
/// as SIGTERM). Cheap to clone; calling it more than once is harmless.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<bool>>,
}

impl ShutdownHandle {
    /// Begins draining: `/readyz` answers 503 at once, the listeners close
    /// after the shutdown delay, and in-flight requests get the grace period.
    pub fn shutdown(&self) {
        self.tx.send_replace(true);
    }
}

/// Why the server began draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    Terminate,
    Interrupt,
    Handle,
}

impl Trigger {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Trigger::Terminate => "SIGTERM",
            Trigger::Interrupt => "SIGINT",
            Trigger::Handle => "shutdown requested",
        }
    }
}

/// Waits for the first shutdown trigger.
pub(crate) struct ShutdownSignal {
    rx: watch::Receiver<bool>,
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignal {
    /// Installs the signal handlers now (so a SIGTERM that arrives before
    /// [`ShutdownSignal::recv`] is polled still drains rather than kills).
    pub(crate) fn new(signals: Signals) -> std::io::Result<(ShutdownSignal, ShutdownHandle)> {
        let (tx, rx) = watch::channel(false);
        let signals = match signals {
            Signals::Handle => {
                use tokio::signal::unix::{SignalKind, signal};
                Some((
                    signal(SignalKind::terminate())?,
                    signal(SignalKind::interrupt())?,
                ))
            }
            Signals::Ignore => None,
        };
        Ok((
            ShutdownSignal { rx, signals },
            ShutdownHandle { tx: Arc::new(tx) },
        ))
    }

    /// Resolves at the first trigger.
    pub(crate) async fn recv(&mut self) -> Trigger {
        let ShutdownSignal { rx, signals } = self;
        let handle = async {
            // An error means every handle is gone: nothing can trigger
            // through this path any more, so wait for a signal instead.
            if rx.wait_for(|stop| *stop).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        if let Some((term, int)) = signals.as_mut() {
            return tokio::select! {
                _ = term.recv() => Trigger::Terminate,
                _ = int.recv() => Trigger::Interrupt,
                () = handle => Trigger::Handle,
            };
        }
        handle.await;
        Trigger::Handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn handle_triggers_once_and_stays_triggered() {
        let (mut signal, handle) = ShutdownSignal::new(Signals::Ignore).unwrap();
        let pending = tokio::time::timeout(Duration::from_millis(50), signal.recv()).await;
        assert!(pending.is_err());
        handle.clone().shutdown();
        handle.shutdown();
        assert_eq!(signal.recv().await, Trigger::Handle);
        assert_eq!(signal.recv().await, Trigger::Handle);
    }
}

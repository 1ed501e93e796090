//! Registry verification for commands that judge many reviews at once:
//! each distinct image is verified once per run, with the policy's
//! deadline per batch, on a runtime made only when a `verify` rule applies.

use std::sync::Arc;
use std::time::Instant;

use crate::decide::{Engine, verify_images};
use crate::policy::Snapshot;
use crate::review::Checks;

/// The verification results of one run, for one policy.
#[derive(Debug)]
pub struct Verifications {
    engine: Arc<Engine>,
    runtime: Option<tokio::runtime::Runtime>,
    checks: Checks,
    /// Images already asked for (verified, or failed to verify).
    asked: std::collections::HashSet<String>,
}

/// Most distinct images remembered in one run; past it the results are
/// dropped and images are verified again (the verifier's own cache still
/// answers), so a long replay keeps bounded memory.
const MAX_REMEMBERED: usize = 100_000;

impl Verifications {
    /// Results for the policy of `engine`; the runtime is started only if
    /// the policy has `verify` rules.
    pub fn new(engine: Arc<Engine>) -> std::io::Result<Verifications> {
        let runtime = if engine.policy().supply_chain().has_rules() {
            Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            )
        } else {
            None
        };
        Ok(Verifications {
            engine,
            runtime,
            checks: Checks::new(),
            asked: std::collections::HashSet::new(),
        })
    }

    /// The engine these results are for.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The policy these results are for.
    pub fn snapshot(&self) -> &Snapshot {
        self.engine.policy()
    }

    /// Whether the policy has `verify` rules (otherwise [`Self::verify`] does
    /// nothing and no review needs a result).
    pub fn needed(&self) -> bool {
        self.runtime.is_some()
    }

    /// Verifies the images of `pending` not verified yet in this run,
    /// concurrently, within the policy's `verification.timeout`.
    pub fn verify(&mut self, pending: Vec<String>) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        let fresh: Vec<String> = pending
            .into_iter()
            .filter(|image| !self.asked.contains(image))
            .collect();
        if fresh.is_empty() {
            return;
        }
        if self.asked.len() + fresh.len() > MAX_REMEMBERED {
            self.asked.clear();
            self.checks = Checks::new();
        }
        let deadline = Instant::now() + self.snapshot().supply_chain().timeout();
        let engine = Arc::clone(&self.engine);
        let got = runtime.block_on(verify_images(engine, &fresh, deadline));
        for image in fresh {
            if let Some(check) = got.get(&image) {
                self.checks.insert(image.clone(), *check);
            }
            self.asked.insert(image);
        }
    }

    /// Every result so far.
    pub fn checks(&self) -> &Checks {
        &self.checks
    }
}

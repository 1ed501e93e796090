//! The decision pipeline, one for the server and the CLI:
//!
//! ```text
//! body bytes ──▶ review::parse ──▶ policy decisions ──▶ verifications ──▶ answer
//!                (one parse, in    (Scope::judge,       (verify, under    (response
//!                 place: borrowed   each image parsed    the review's      bytes)
//!                 views)            once)                one deadline)
//! ```
//!
//! [`Engine`] is everything a decision reads: the compiled policy and the
//! verifier its `verify` rules use. The server holds it in one `ArcSwap`
//! and swaps it whole on reload; the CLI makes one per command. A review
//! that no rule can send to the network is decided at once
//! ([`Engine::decide_now`]); the others parse once, hold the borrowed views
//! across the wait for their verifications, and are answered from them
//! ([`Engine::decide`]). `server` only moves bytes, TLS and connections.

mod verify;

pub use verify::{check_image, verify_images};

use std::sync::Arc;
use std::time::Instant;

use crate::policy::{Outcome, Snapshot};
use crate::review::{self, Api, Checks, DecodeError, Mutated, Reviewed};
use crate::verify::Verifier;
use crate::verify::registry::{Observe, Registry, RegistryConfig};

/// A compiled policy and the verifier of its `verify` rules: what one
/// decision reads, swapped as one.
#[derive(Debug)]
pub struct Engine {
    policy: Snapshot,
    verifier: Option<Arc<Verifier>>,
}

/// What a request asks of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// A validating review (`/imagepolicy`, `/validate`).
    Review(Api),
    /// A mutating AdmissionReview (`/mutate`).
    Mutate,
}

/// The pipeline's answer to a [`Request`].
#[derive(Debug)]
pub enum Answer {
    /// A validating review's answer.
    Reviewed(Reviewed),
    /// A mutating review's answer.
    Mutated(Mutated),
}

impl Engine {
    /// The engine for `policy`, with a verifier when the policy needs one
    /// (`verify` rules or digest pinning): the one of `previous` when its
    /// registry and cache settings are unchanged, so that cached verdicts
    /// survive a reload; otherwise a new one, whose registry client reports
    /// to `observe`. Makes no connection.
    pub fn new(policy: Snapshot, previous: Option<&Engine>, observe: Option<Observe>) -> Engine {
        let supply = policy.supply_chain();
        if !supply.has_rules() && !supply.pin_digests() {
            return Engine {
                policy,
                verifier: None,
            };
        }
        if let Some(prev) = previous
            && let Some(verifier) = &prev.verifier
            && prev.policy.supply_chain().same_verifier(supply)
        {
            let verifier = Some(Arc::clone(verifier));
            return Engine { policy, verifier };
        }
        let mut registry = Registry::new(RegistryConfig {
            insecure: supply.insecure().to_vec(),
            credentials: supply.credentials().clone(),
            ca: supply.ca().clone(),
            ..RegistryConfig::default()
        });
        if let Some(observe) = observe {
            registry = registry.with_observer(observe);
        }
        let verifier = Verifier::with_registry(registry, supply.cache());
        Engine {
            policy,
            verifier: Some(Arc::new(verifier)),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &Snapshot {
        &self.policy
    }

    /// The verifier of the policy's `verify` rules, if it needs one.
    pub fn verifier(&self) -> Option<&Arc<Verifier>> {
        self.verifier.as_ref()
    }

    /// Whether answering `request` may wait on registries: `/mutate`, or a
    /// policy with `verify` rules.
    pub fn waits(&self, request: Request) -> bool {
        request == Request::Mutate || self.policy.supply_chain().has_rules()
    }

    /// Decides a review at once. Images that a `verify` rule applies to are
    /// judged `verification_unavailable` here: a policy with `verify` rules
    /// goes through [`Engine::decide`].
    pub fn decide_now(&self, api: Api, mut body: Vec<u8>) -> Result<Reviewed, DecodeError> {
        let parsed = review::parse(api, &mut body)?;
        Ok(parsed.answer(&self.policy, &Checks::new()))
    }

    /// Answers `request`: at once when nothing can wait, otherwise after
    /// verifying, concurrently and under the policy's one deadline, every
    /// image the policy allows and a `verify` rule applies to (a policy
    /// deny never reaches the network). `observe` sees the outcome of every
    /// verification.
    pub async fn decide(
        self: &Arc<Self>,
        request: Request,
        body: Vec<u8>,
        observe: impl Fn(Outcome) + Sync,
    ) -> Result<Answer, DecodeError> {
        match request {
            Request::Review(api) if !self.waits(request) => {
                self.decide_now(api, body).map(Answer::Reviewed)
            }
            // Rare and large: boxed, so that the state of the verification
            // is allocated only by the requests that wait for it.
            _ => Box::pin(self.decide_waiting(request, body, &observe)).await,
        }
    }

    async fn decide_waiting(
        self: &Arc<Self>,
        request: Request,
        mut body: Vec<u8>,
        observe: &(dyn Fn(Outcome) + Sync),
    ) -> Result<Answer, DecodeError> {
        let supply = self.policy.supply_chain();
        let deadline = Instant::now() + supply.timeout();
        let api = match request {
            Request::Review(api) => api,
            Request::Mutate => Api::AdmissionReview,
        };
        // Parsed once: the views into the body are held across the wait.
        let parsed = review::parse(api, &mut body)?;
        match request {
            Request::Review(_) => {
                let pending = parsed.pending(&self.policy, false);
                let checks = self.verify(pending, deadline, observe).await;
                Ok(Answer::Reviewed(parsed.answer(&self.policy, &checks)))
            }
            Request::Mutate => {
                let mut checks = Checks::new();
                if supply.pin_digests() {
                    let pending = parsed.pending(&self.policy, true);
                    checks = self.verify(pending, deadline, observe).await;
                }
                // Parsed as an AdmissionReview, so there is a mutating
                // answer.
                parsed
                    .mutate(&self.policy, &checks)
                    .map(Answer::Mutated)
                    .ok_or_else(|| DecodeError::wrong_kind("ImageReview", "\"AdmissionReview\""))
            }
        }
    }

    async fn verify(
        self: &Arc<Self>,
        images: Vec<String>,
        deadline: Instant,
        observe: &(dyn Fn(Outcome) + Sync),
    ) -> Checks {
        if images.is_empty() {
            return Checks::new();
        }
        let checks = verify_images(Arc::clone(self), &images, deadline).await;
        for image in &images {
            observe(
                checks
                    .get(image)
                    .map_or(Outcome::Unavailable, |c| c.outcome),
            );
        }
        checks
    }
}

#[cfg(test)]
mod tests;

//! The verification step of the pipeline: checking the images a review
//! names against their registries, concurrently, under one deadline.
//!
//! Used by [`Engine::decide`](super::Engine::decide) and by the CLI's batch
//! verifications. The policy decides which rules apply
//! ([`SupplyChain::requirements`]); this module only runs the checks and
//! reports their outcomes. A check that does not finish (deadline,
//! cancellation, a panicked task) records nothing, and the review judges a
//! missing result as `verification_unavailable`.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use super::Engine;
use crate::policy::{KeySet, Outcome, Requirement, SupplyChain};
use crate::reference::Reference;
use crate::review::{Check, Checks};
use crate::verify::{Digest, Verifier};

/// Verifies `images` (as [`Parsed::pending`](crate::review::Parsed::pending)
/// listed them) against the rules of `engine`'s policy, concurrently, until
/// `deadline`. Images that no rule applies to are only resolved to their
/// digest (for `/mutate`).
pub async fn verify_images(engine: Arc<Engine>, images: &[String], deadline: Instant) -> Checks {
    let mut checks = Checks::new();
    let Some(verifier) = engine.verifier() else {
        return checks;
    };
    let mut tasks = JoinSet::new();
    for image in images {
        let (engine, verifier) = (Arc::clone(&engine), Arc::clone(verifier));
        let image = image.clone();
        tasks.spawn(async move {
            let supply = engine.policy().supply_chain();
            let check = check_image(&verifier, supply, &image, deadline).await;
            (image, check)
        });
    }
    let waited = tokio::time::timeout_at(deadline.into(), async {
        while let Some(joined) = tasks.join_next().await {
            // A task that panicked records nothing: judged unavailable.
            if let Ok((image, check)) = joined {
                checks.insert(image, check);
            }
        }
    })
    .await;
    // Past the deadline the rest is abandoned (the tasks are aborted when
    // the set is dropped) and judged unavailable.
    drop(waited);
    checks
}

fn unavailable() -> Check {
    Check {
        outcome: Outcome::Unavailable,
        digest: None,
    }
}

/// Every rule that applies to `image`, against one digest: the tag is
/// resolved once (by the first rule), and the other rules verify that very
/// digest, so a tag moved meanwhile cannot split the verdict. The first
/// definite failure decides; otherwise an unavailable rule makes the image
/// unavailable. The image string is parsed once.
pub async fn check_image(
    verifier: &Verifier,
    supply: &SupplyChain,
    image: &str,
    deadline: Instant,
) -> Check {
    let Ok(reference) = Reference::parse(image) else {
        return unavailable();
    };
    let rules: Vec<&Requirement> = supply.requirements(&reference).collect();
    if rules.is_empty() {
        let resolve_only = Requirement::new(KeySet::default(), false, Vec::new(), None);
        let v = verifier.verify(&reference, &resolve_only, deadline).await;
        return Check {
            outcome: v.outcome,
            digest: v.digest,
        };
    }
    let mut digest: Option<Digest> = None;
    let mut failure: Option<Outcome> = None;
    let mut unreachable = false;
    for req in rules {
        let v = match digest {
            Some(d) => verifier.verify_at(&reference, d, req, deadline).await,
            None => verifier.verify(&reference, req, deadline).await,
        };
        if digest.is_none() {
            digest = v.digest;
        }
        match v.outcome {
            Outcome::Verified => {}
            Outcome::Unavailable => unreachable = true,
            other => {
                failure.get_or_insert(other);
            }
        }
    }
    let outcome = match (failure, unreachable) {
        (Some(f), _) => f,
        (None, true) => Outcome::Unavailable,
        (None, false) => Outcome::Verified,
    };
    Check { outcome, digest }
}

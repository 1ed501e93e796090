//! Supply-chain verification for reviews: attaching a [`Verifier`] to a
//! policy snapshot, and checking the images a review names against the
//! registry, concurrently, under one deadline.
//!
//! Used by the server's review routes and by `imagegate check`. The policy
//! decides which rules apply ([`SupplyChain::requirements`]); this module
//! only runs the checks and reports their outcomes. A check that does not
//! finish (deadline, cancellation, a panicked task) records nothing, and
//! the review judges a missing result as `verification_unavailable`.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::policy::{Snapshot, SupplyChain};
use crate::reference::Reference;
use crate::review::{Check, Checks};
use crate::verify::registry::{Observe, Registry};
use crate::verify::{Digest, KeySet, Outcome, Requirement, Verifier};

/// Returns `snapshot` with a verifier when its policy needs one (`verify`
/// rules or digest pinning): the one of `previous` when the registry and
/// cache settings are unchanged, so the cache survives the reload;
/// otherwise a new one whose registry client reports to `observe`.
pub fn attach_verifier(
    snapshot: Snapshot,
    previous: Option<&Snapshot>,
    observe: Option<Observe>,
) -> Snapshot {
    let supply = snapshot.supply_chain();
    if !supply.has_rules() && !supply.pin_digests() {
        return snapshot;
    }
    if let Some(prev) = previous
        && let Some(verifier) = prev.verifier()
        && prev.supply_chain().same_verifier(supply)
    {
        let verifier = Arc::clone(verifier);
        return snapshot.with_verifier(verifier);
    }
    let config = supply.verifier_config();
    let mut registry = Registry::new(config.registry);
    if let Some(observe) = observe {
        registry = registry.with_observer(observe);
    }
    let verifier = Arc::new(Verifier::with_registry(registry, config.cache));
    snapshot.with_verifier(verifier)
}

/// Verifies `images` (as a review's `*_pending` listed them) against the
/// rules of `snapshot`, concurrently, until `deadline`. Images that no rule
/// applies to are only resolved to their digest (for `/mutate`).
pub async fn verify_images(
    snapshot: Arc<Snapshot>,
    images: Vec<String>,
    deadline: Instant,
) -> Checks {
    let mut checks = Checks::new();
    if snapshot.verifier().is_none() {
        return checks;
    }
    let mut tasks = JoinSet::new();
    for image in images {
        let snapshot = Arc::clone(&snapshot);
        tasks.spawn(async move {
            let check = match snapshot.verifier() {
                Some(verifier) => {
                    check_image(verifier, snapshot.supply_chain(), &image, deadline).await
                }
                None => unavailable(),
            };
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
/// unavailable.
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
            Some(d) => {
                let pinned = format!("{}/{}@{d}", reference.domain(), reference.path());
                match Reference::parse(&pinned) {
                    Ok(r) => verifier.verify(&r, req, deadline).await,
                    Err(_) => return unavailable(),
                }
            }
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

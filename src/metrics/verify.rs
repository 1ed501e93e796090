//! The verification families: registry exchanges by operation and status
//! class (counted by the registry client's observer), verdict-cache
//! lookups, and verifications by outcome.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry,
};

use crate::policy::Outcome;
use crate::verify::registry::{Observe, Operation};

use super::labels::{REGISTRY_BUCKETS, StatusClass, operation_index};
use super::register;

/// The registry families, shared with the registry client's observer.
#[derive(Debug)]
struct RegistryFamilies {
    requests: [[IntCounter; StatusClass::ALL.len()]; Operation::ALL.len()],
    duration: [Histogram; Operation::ALL.len()],
}

/// The verifier's cumulative counters as last seen, to turn them into
/// counter increments (a new verifier after a reload starts from zero).
#[derive(Debug, Default)]
struct SeenStats {
    verifier: u64,
    values: [u64; 3],
}

/// `imagegate_registry_requests_total`,
/// `imagegate_registry_request_duration_seconds`,
/// `imagegate_verify_cache_total`, `imagegate_verifications_total`.
#[derive(Debug)]
pub(super) struct Verify {
    families: Arc<RegistryFamilies>,
    /// Cache hits, misses and coalesced waits, in that order.
    cache: [IntCounter; 3],
    seen: Mutex<SeenStats>,
    /// Indexed like [`Outcome::ALL`].
    verifications: [IntCounter; Outcome::ALL.len()],
}

impl Verify {
    pub(super) fn register(registry: &Registry) -> Verify {
        let requests_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_registry_requests_total",
                    "HTTP exchanges with container registries during verification, by operation and status class (none: no answer).",
                ),
                &["operation", "status"],
            ),
        );
        let duration_vec = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "imagegate_registry_request_duration_seconds",
                    "Duration of HTTP exchanges with container registries, by operation.",
                )
                .buckets(REGISTRY_BUCKETS.to_vec()),
                &["operation"],
            ),
        );
        let cache_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_verify_cache_total",
                    "Verification cache lookups: hit, miss, and coalesced (a miss that waited on another review's registry round).",
                ),
                &["result"],
            ),
        );
        let verifications_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_verifications_total",
                    "Image verifications against verify rules, by the requirement concerned and the result (a reason code).",
                ),
                &["kind", "result"],
            ),
        );
        Verify {
            families: Arc::new(RegistryFamilies {
                requests: Operation::ALL.map(|op| {
                    StatusClass::ALL
                        .map(|class| requests_vec.with_label_values(&[op.as_str(), class.as_str()]))
                }),
                duration: Operation::ALL.map(|op| duration_vec.with_label_values(&[op.as_str()])),
            }),
            cache: ["hit", "miss", "coalesced"].map(|r| cache_vec.with_label_values(&[r])),
            seen: Mutex::new(SeenStats::default()),
            verifications: Outcome::ALL
                .map(|o| verifications_vec.with_label_values(&[o.kind(), o.as_str()])),
        }
    }

    pub(super) fn observer(&self) -> Observe {
        let families = Arc::clone(&self.families);
        Arc::new(move |op, status, elapsed: Duration| {
            let i = operation_index(op);
            families.requests[i][StatusClass::of(status).index()].inc();
            families.duration[i].observe(elapsed.as_secs_f64());
        })
    }

    pub(super) fn observe(&self, outcome: Outcome) {
        if let Some(i) = Outcome::ALL.iter().position(|o| *o == outcome) {
            self.verifications[i].inc();
        }
    }

    pub(super) fn sync_cache(&self, verifier: u64, hits: u64, misses: u64, coalesced: u64) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.verifier != verifier {
            *seen = SeenStats {
                verifier,
                values: [0; 3],
            };
        }
        for (i, now) in [hits, misses, coalesced].into_iter().enumerate() {
            let delta = now.saturating_sub(seen.values[i]);
            self.cache[i].inc_by(delta);
            seen.values[i] = seen.values[i].max(now);
        }
    }
}

//! Every Prometheus metric family of imagegate, with its closed label sets.
//!
//! Label values come only from the enums of `labels.rs` and from the closed
//! enums of [`policy`](crate::policy) ([`Reason`], [`Mode`]) and
//! [`review`](crate::review) ([`Api`], [`DecodeErrorKind`]), never from
//! request strings, so the number of series is fixed at start-up. One
//! struct per concern registers its families and resolves every label child
//! once: recording on the hot path is an array index and an atomic add,
//! with no map lookup and no allocation.
//!
//! This module only counts; it must not decide anything or read requests.

use std::time::Duration;

use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};

use crate::policy::Outcome;
use crate::policy::{Mode, Reason};
use crate::review::{Api, DecodeErrorKind};
use crate::verify::registry::Observe;

mod http;
mod labels;
mod process;
mod reviews;
mod verify;

#[cfg(test)]
mod tests;

pub use labels::{
    CodeLabel, DURATION_BUCKETS, DecisionLabel, PathLabel, REGISTRY_BUCKETS, ReloadResult,
    StatusClass, TransportLabel,
};

/// One process's metric families, registered in a private [`Registry`].
///
/// Each server owns one, so tests running several servers in one process
/// see their own counts.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: http::Http,
    reviews: reviews::Reviews,
    process: process::Process,
    verify: verify::Verify,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family and resolves every label child.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        Metrics {
            http: http::Http::register(&registry),
            reviews: reviews::Reviews::register(&registry),
            process: process::Process::register(&registry),
            verify: verify::Verify::register(&registry),
            registry,
        }
    }

    /// Counts one answered request by transport and status (the
    /// transport-less families are counted by [`Metrics::observe_request`]).
    pub fn observe_transport_request(&self, transport: TransportLabel, status: u16) {
        self.http.observe_transport_request(transport, status);
    }

    /// The open-connections gauge of one transport (next to the all-listener
    /// total of [`Metrics::connections_open`]).
    pub fn transport_connections_open(&self, transport: TransportLabel) -> &IntGauge {
        self.http.transport_connections_open(transport)
    }

    /// An observer for a registry client that counts its exchanges here.
    pub fn registry_observer(&self) -> Observe {
        self.verify.observer()
    }

    /// Counts one image verification by its outcome.
    pub fn observe_verification(&self, outcome: Outcome) {
        self.verify.observe(outcome);
    }

    /// Brings the cache counters up to the verifier's cumulative `hits`,
    /// `misses` and `coalesced` (`verifier` is [`crate::verify::Verifier::id`]; a new
    /// one after a reload counts from zero again).
    pub fn sync_verify_cache(&self, verifier: u64, hits: u64, misses: u64, coalesced: u64) {
        self.verify.sync_cache(verifier, hits, misses, coalesced);
    }

    /// Counts one answered request and its duration.
    pub fn observe_request(&self, path: PathLabel, status: u16, elapsed: Duration) {
        self.http.observe_request(path, status, elapsed);
    }

    /// Counts one review. `verdict_allowed` is the policy's verdict before
    /// audit mode (every image allowed).
    pub fn observe_review(&self, api: Api, verdict_allowed: bool, mode: Mode) {
        self.reviews.observe_review(api, verdict_allowed, mode);
    }

    /// Counts one judged image by its reason code.
    pub fn observe_image(&self, reason: Reason) {
        self.reviews.observe_image(reason);
    }

    /// Counts one body rejected with 400.
    pub fn observe_decode_error(&self, kind: DecodeErrorKind) {
        self.reviews.observe_decode_error(kind);
    }

    /// Counts one policy reload attempt.
    pub fn observe_policy_reload(&self, result: ReloadResult) {
        self.process.policy_reloads[result.index()].inc();
    }

    /// Sets the generation of the policy in force.
    pub fn set_policy_generation(&self, generation: u64) {
        self.process
            .policy_generation
            .set(i64::try_from(generation).unwrap_or(i64::MAX));
    }

    /// Counts one serving-certificate reload attempt.
    pub fn observe_tls_reload(&self, result: ReloadResult) {
        self.process.tls_reloads[result.index()].inc();
    }

    /// The trusted-root refresh counters, by [`ReloadResult`] index, for
    /// the refresh tasks to hold.
    pub fn trust_root_refreshes(&self) -> [IntCounter; ReloadResult::ALL.len()] {
        self.process.trust_root_refreshes.clone()
    }

    /// The gauge of TUF sources whose last refresh failed.
    pub fn trust_root_sources_failing(&self) -> IntGauge {
        self.process.trust_root_sources_failing.clone()
    }

    /// Counts one connection closed at accept because the cap was reached.
    pub fn observe_connection_rejected(&self) {
        self.process.connections_rejected.inc();
    }

    /// The connections-rejected counter (shared with the accept loops).
    pub fn connections_rejected(&self) -> &IntCounter {
        &self.process.connections_rejected
    }

    /// The counter of judged reviews the `--record` writer could not take.
    pub fn records_dropped(&self) -> &IntCounter {
        &self.process.records_dropped
    }

    /// The open-connections gauge (incremented and decremented by a guard).
    pub fn connections_open(&self) -> &IntGauge {
        &self.process.connections_open
    }

    /// The in-flight-requests gauge (incremented and decremented by a guard).
    pub fn requests_in_flight(&self) -> &IntGauge {
        &self.process.requests_in_flight
    }

    /// Renders every family in the Prometheus text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; an error would mean a
        // malformed family, which the unit tests rule out.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "cannot encode metrics");
        }
        out
    }

    /// The `Content-Type` of [`Metrics::render`]'s output.
    pub fn content_type() -> &'static str {
        prometheus::TEXT_FORMAT
    }
}

/// Registers `collector` in `registry` and returns it.
fn register<C>(registry: &Registry, collector: prometheus::Result<C>) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let collector = collector.expect("metric names, help texts and labels are static and valid");
    registry
        .register(Box::new(collector.clone()))
        .expect("each family is registered once in a fresh registry");
    collector
}

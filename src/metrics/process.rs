//! The process families: policy and certificate reloads, the policy
//! generation, connections and requests in flight, connections refused at
//! the cap, build information.

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::labels::ReloadResult;
use super::register;

/// `imagegate_policy_reloads_total`, `imagegate_policy_generation`,
/// `imagegate_tls_reloads_total`, `imagegate_trust_root_refreshes_total`,
/// `imagegate_trust_root_sources_failing`, `imagegate_connections_open`,
/// `imagegate_requests_in_flight`, `imagegate_connections_rejected_total`,
/// `imagegate_records_dropped_total`, `imagegate_build_info`.
#[derive(Debug)]
pub(super) struct Process {
    pub(super) policy_reloads: [IntCounter; ReloadResult::ALL.len()],
    pub(super) policy_generation: IntGauge,
    pub(super) tls_reloads: [IntCounter; ReloadResult::ALL.len()],
    pub(super) trust_root_refreshes: [IntCounter; ReloadResult::ALL.len()],
    pub(super) trust_root_sources_failing: IntGauge,
    pub(super) connections_open: IntGauge,
    pub(super) requests_in_flight: IntGauge,
    pub(super) connections_rejected: IntCounter,
    pub(super) records_dropped: IntCounter,
}

impl Process {
    pub(super) fn register(registry: &Registry) -> Process {
        let reloads = |name: &str, help: &str| {
            let family = register(
                registry,
                IntCounterVec::new(Opts::new(name, help), &["result"]),
            );
            ReloadResult::ALL.map(|r| family.with_label_values(&[r.as_str()]))
        };
        let policy_reloads = reloads(
            "imagegate_policy_reloads_total",
            "Policy file reloads, by result (an error keeps the previous policy).",
        );
        let tls_reloads = reloads(
            "imagegate_tls_reloads_total",
            "Serving certificate reloads, by result (an error keeps the previous pair).",
        );
        let trust_root_refreshes = reloads(
            "imagegate_trust_root_refreshes_total",
            "Sigstore trusted root refreshes from TUF repositories, by result (an error keeps the last verified root).",
        );
        let build_info = register(
            registry,
            IntGaugeVec::new(
                Opts::new("imagegate_build_info", "Build information; always 1."),
                &["version"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Process {
            policy_reloads,
            policy_generation: register(
                registry,
                IntGauge::new(
                    "imagegate_policy_generation",
                    "Generation of the policy in force (1 at start-up, +1 per successful reload).",
                ),
            ),
            tls_reloads,
            trust_root_refreshes,
            trust_root_sources_failing: register(
                registry,
                IntGauge::new(
                    "imagegate_trust_root_sources_failing",
                    "TUF repositories of the policy in force whose last trusted-root refresh failed.",
                ),
            ),
            connections_open: register(
                registry,
                IntGauge::new(
                    "imagegate_connections_open",
                    "Client connections currently open (all listeners).",
                ),
            ),
            requests_in_flight: register(
                registry,
                IntGauge::new(
                    "imagegate_requests_in_flight",
                    "Requests currently being handled.",
                ),
            ),
            connections_rejected: register(
                registry,
                IntCounter::new(
                    "imagegate_connections_rejected_total",
                    "Connections closed at accept because --max-connections were open.",
                ),
            ),
            records_dropped: register(
                registry,
                IntCounter::new(
                    "imagegate_records_dropped_total",
                    "Judged reviews not written to the --record file because its queue was full.",
                ),
            ),
        }
    }
}

//! The HTTP families: requests and their durations by route and status,
//! and the same counts by transport (TCP or QUIC).

use std::time::Duration;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::labels::{CodeLabel, DURATION_BUCKETS, PathLabel, TransportLabel};
use super::register;

/// `imagegate_http_requests_total`, `imagegate_http_request_duration_seconds`,
/// `imagegate_transport_requests_total`, `imagegate_transport_connections_open`.
#[derive(Debug)]
pub(super) struct Http {
    requests: [[IntCounter; CodeLabel::ALL.len()]; PathLabel::ALL.len()],
    duration: [Histogram; PathLabel::ALL.len()],
    transport_requests: [[IntCounter; CodeLabel::ALL.len()]; TransportLabel::ALL.len()],
    transport_connections_open: [IntGauge; TransportLabel::ALL.len()],
}

impl Http {
    pub(super) fn register(registry: &Registry) -> Http {
        let requests_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_http_requests_total",
                    "HTTP requests answered, by route and status code.",
                ),
                &["path", "code"],
            ),
        );
        let duration_vec = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "imagegate_http_request_duration_seconds",
                    "Time from request headers to response, by route.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["path"],
            ),
        );
        // The contract families above keep their labels; these break the
        // same counts down by transport.
        let transport_requests_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_transport_requests_total",
                    "HTTP requests answered, by transport (tcp: HTTP/1.1 and HTTP/2, quic: HTTP/3) and status code.",
                ),
                &["transport", "code"],
            ),
        );
        let transport_connections_open_vec = register(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "imagegate_transport_connections_open",
                    "Client connections currently open, by transport.",
                ),
                &["transport"],
            ),
        );
        Http {
            requests: PathLabel::ALL.map(|path| {
                CodeLabel::ALL
                    .map(|code| requests_vec.with_label_values(&[path.as_str(), code.as_str()]))
            }),
            duration: PathLabel::ALL.map(|path| duration_vec.with_label_values(&[path.as_str()])),
            transport_requests: TransportLabel::ALL.map(|transport| {
                CodeLabel::ALL.map(|code| {
                    transport_requests_vec.with_label_values(&[transport.as_str(), code.as_str()])
                })
            }),
            transport_connections_open: TransportLabel::ALL.map(|transport| {
                transport_connections_open_vec.with_label_values(&[transport.as_str()])
            }),
        }
    }

    pub(super) fn observe_request(&self, path: PathLabel, status: u16, elapsed: Duration) {
        self.requests[path.index()][CodeLabel::from_status(status).index()].inc();
        self.duration[path.index()].observe(elapsed.as_secs_f64());
    }

    pub(super) fn observe_transport_request(&self, transport: TransportLabel, status: u16) {
        self.transport_requests[transport.index()][CodeLabel::from_status(status).index()].inc();
    }

    pub(super) fn transport_connections_open(&self, transport: TransportLabel) -> &IntGauge {
        &self.transport_connections_open[transport.index()]
    }
}

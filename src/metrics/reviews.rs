//! The decision families: reviews by API, verdict and mode; images by
//! reason; bodies rejected by kind of problem.

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::policy::{Mode, Reason};
use crate::review::{Api, DecodeErrorKind};

use super::labels::{APIS, DecisionLabel, MODES, api_index, mode_index};
use super::register;

/// `imagegate_reviews_total`, `imagegate_image_decisions_total`,
/// `imagegate_decode_errors_total`.
#[derive(Debug)]
pub(super) struct Reviews {
    reviews: [[[IntCounter; MODES.len()]; DecisionLabel::ALL.len()]; APIS.len()],
    /// Indexed like [`Reason::ALL`].
    images: Vec<IntCounter>,
    /// Indexed like [`DecodeErrorKind::ALL`].
    decode_errors: Vec<IntCounter>,
}

impl Reviews {
    pub(super) fn register(registry: &Registry) -> Reviews {
        let reviews_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_reviews_total",
                    "Reviews answered, by API, policy verdict and mode (audit-mode denials are admitted).",
                ),
                &["api", "decision", "mode"],
            ),
        );
        let images_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_image_decisions_total",
                    "Images judged, by policy verdict and reason code.",
                ),
                &["decision", "reason"],
            ),
        );
        let decode_errors_vec = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "imagegate_decode_errors_total",
                    "Request bodies rejected with 400, by kind of problem.",
                ),
                &["kind"],
            ),
        );
        Reviews {
            reviews: APIS.map(|api| {
                DecisionLabel::ALL.map(|decision| {
                    MODES.map(|mode| {
                        reviews_vec.with_label_values(&[
                            api.as_str(),
                            decision.as_str(),
                            mode.as_str(),
                        ])
                    })
                })
            }),
            images: Reason::ALL
                .iter()
                .map(|reason| {
                    images_vec.with_label_values(&[
                        DecisionLabel::from_allowed(reason.is_allow()).as_str(),
                        reason.as_str(),
                    ])
                })
                .collect(),
            decode_errors: DecodeErrorKind::ALL
                .iter()
                .map(|kind| decode_errors_vec.with_label_values(&[kind.as_str()]))
                .collect(),
        }
    }

    pub(super) fn observe_review(&self, api: Api, verdict_allowed: bool, mode: Mode) {
        let decision = DecisionLabel::from_allowed(verdict_allowed);
        self.reviews[api_index(api)][decision.index()][mode_index(mode)].inc();
    }

    pub(super) fn observe_image(&self, reason: Reason) {
        // Reason::ALL is short (about ten codes); a scan beats a map here.
        if let Some(i) = Reason::ALL.iter().position(|r| *r == reason)
            && let Some(counter) = self.images.get(i)
        {
            counter.inc();
        }
    }

    pub(super) fn observe_decode_error(&self, kind: DecodeErrorKind) {
        if let Some(i) = DecodeErrorKind::ALL.iter().position(|k| *k == kind)
            && let Some(counter) = self.decode_errors.get(i)
        {
            counter.inc();
        }
    }
}

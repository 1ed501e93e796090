//! The review routes: read the body within its limits, hand it to the
//! decision pipeline ([`Engine::decide`](crate::decide::Engine::decide)),
//! record and log the outcome, answer.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;

use crate::decide::Answer;
use crate::policy::Snapshot;
use crate::review::{self, AdmittedBy, Api, Summary};

use super::super::limits::read_body;
use super::super::record::Recording;
use super::respond::{Admitted, Clean, Denied, body_error, error, response};
use super::{App, Endpoint, JSON};

impl App {
    /// Reads the body of a review and answers it.
    pub(super) async fn review<B>(&self, body: B, endpoint: Endpoint) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limits = &self.limits;
        let read = read_body(
            body,
            limits.max_body_bytes,
            limits.body_read_timeout,
            &self.bodies,
        );
        // Held until the answer is made: the budget counts this body's
        // memory for as long as it lives.
        let (body, _budget) = match read.await {
            Ok(read) => read.into_parts(),
            Err(e) => return body_error(&e),
        };
        let engine = self.engine.load_full();
        // The body as received (parsing rewrites it), when recording.
        let copy = match (&self.recorder, endpoint) {
            (Some(recorder), Endpoint::ImageReview | Endpoint::Validate) => recorder.copy(&body),
            _ => None,
        };
        let observe = |outcome| self.metrics.observe_verification(outcome);
        let result = engine.decide(endpoint.ask(), body, observe).await;
        self.answer(result, engine.policy(), endpoint.api(), copy)
    }

    /// The response to a decided review (or to a body that is not one),
    /// recorded in the metrics and the log.
    pub(super) fn answer(
        &self,
        result: Result<Answer, review::DecodeError>,
        snapshot: &Snapshot,
        api: Api,
        copy: Option<Recording>,
    ) -> Response<Full<Bytes>> {
        match result {
            Ok(Answer::Reviewed(reviewed)) => {
                self.record(&reviewed.outcome, snapshot.generation());
                if let (Some(recorder), Some(copy)) = (&self.recorder, copy) {
                    recorder.record(api, reviewed.outcome.allowed, snapshot.generation(), copy);
                }
                response(StatusCode::OK, JSON, reviewed.body)
            }
            Ok(Answer::Mutated(mutated)) => {
                tracing::debug!(pinned = mutated.pinned, "mutate answered");
                response(StatusCode::OK, JSON, review::body_bytes(mutated.body))
            }
            Err(e) => {
                self.metrics.observe_decode_error(e.kind());
                tracing::debug!(api = api.as_str(), kind = e.kind().as_str(), error = %Clean(&e.to_string()), "not a review");
                error(StatusCode::BAD_REQUEST, &e.to_string())
            }
        }
    }

    pub(super) fn record(&self, outcome: &Summary, generation: u64) {
        // `denied` lists every image whose verdict is a deny (a
        // `verification_unavailable` admitted by `onError: allow` is not).
        let verdict_allowed = outcome.denied.is_empty();
        self.metrics
            .observe_review(outcome.api, verdict_allowed, outcome.mode);
        for reason in &outcome.reasons {
            self.metrics.observe_image(*reason);
        }
        if verdict_allowed {
            tracing::debug!(
                api = %outcome.api.as_str(),
                namespace = %Clean(&outcome.namespace),
                images = outcome.reasons.len(),
                generation,
                mode = %outcome.mode.as_str(),
                "review allowed"
            );
        } else {
            tracing::info!(
                api = %outcome.api.as_str(),
                namespace = %Clean(&outcome.namespace),
                denied = %Denied(&outcome.denied),
                generation,
                mode = %outcome.mode.as_str(),
                allowed = outcome.allowed,
                "review denied"
            );
        }
        // What was admitted although the policy denied it is an audit
        // trail, logged whatever the log level filters out of the rest.
        for by in [AdmittedBy::BreakGlass, AdmittedBy::OnErrorAllow] {
            if outcome.admitted.iter().any(|a| a.by == by) {
                tracing::warn!(
                    api = %outcome.api.as_str(),
                    namespace = %Clean(&outcome.namespace),
                    user = %Clean(&outcome.user),
                    admitted_by = by.as_str(),
                    images = %Admitted(&outcome.admitted, by),
                    generation,
                    mode = %outcome.mode.as_str(),
                    "images admitted despite a deny verdict"
                );
            }
        }
    }
}

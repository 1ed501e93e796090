//! The review routes: read the body within its limits, decide it (at once,
//! or after verifying at registries what the policy asks for), record and
//! log the outcome, answer.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::body::Body;

use crate::policy::Snapshot;
use crate::review::{self, AdmittedBy, Api, Checks, Outcome, Reviewed};
use crate::verify::Outcome as VerifyOutcome;

use super::super::limits::read_body;
use super::super::record::Recording;
use super::super::verification::verify_images;
use super::respond::{Admitted, Clean, Denied, body_error, error, response};
use super::{Answer, App, Endpoint, JSON};

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
        let snapshot = self.policy.load_full();
        // The body as received (parsing rewrites it), when recording.
        let copy = match (&self.recorder, endpoint) {
            (Some(recorder), Endpoint::ImageReview | Endpoint::Validate) => recorder.copy(&body),
            _ => None,
        };
        if endpoint == Endpoint::Mutate || snapshot.supply_chain().has_rules() {
            // Rare and large: boxed, so that the state of the verification
            // is allocated only by the requests that wait for it.
            return Box::pin(self.review_verified(body, snapshot, endpoint, copy)).await;
        }
        // The fast path: no rule can send this review to the network, so it
        // is decided here without waiting.
        let api = endpoint.api();
        let result = decide_now(body, &snapshot, api);
        self.answer(result.map(Answer::Reviewed), &snapshot, api, copy)
    }

    /// A review that may wait on the network: `/mutate`, or a policy with
    /// `verify` rules.
    pub(super) async fn review_verified(
        &self,
        body: Vec<u8>,
        snapshot: Arc<Snapshot>,
        endpoint: Endpoint,
        copy: Option<Recording>,
    ) -> Response<Full<Bytes>> {
        let api = endpoint.api();
        let result = if endpoint == Endpoint::Mutate {
            self.mutate(body, &snapshot).await
        } else {
            self.verified_review(body, &snapshot, api)
                .await
                .map(Answer::Reviewed)
        };
        self.answer(result, &snapshot, api, copy)
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
                response(StatusCode::OK, JSON, mutated.body)
            }
            Err(e) => {
                self.metrics.observe_decode_error(e.kind());
                tracing::debug!(api = api.as_str(), kind = e.kind().as_str(), error = %Clean(&e.to_string()), "not a review");
                error(StatusCode::BAD_REQUEST, &e.to_string())
            }
        }
    }

    /// A review under `verify` rules: the policy decides first (a policy
    /// deny never reaches the network), then every image that a rule
    /// applies to is verified, concurrently, under the policy's one
    /// deadline, and the review is decided with the outcomes.
    pub(super) async fn verified_review(
        &self,
        mut body: Vec<u8>,
        snapshot: &Arc<Snapshot>,
        api: Api,
    ) -> Result<Reviewed, review::DecodeError> {
        let deadline = Instant::now() + snapshot.supply_chain().timeout();
        // Parsed once: the views into the body are held across the wait.
        let parsed = review::parse(api, &mut body)?;
        let pending = parsed.pending(snapshot, false);
        let checks = self.verify(snapshot, pending, deadline).await;
        Ok(parsed.answer(snapshot, &checks))
    }

    /// `POST /mutate`: with `mutate.pinDigests`, the tag images are
    /// verified (or resolved) and pinned to their digest.
    pub(super) async fn mutate(
        &self,
        mut body: Vec<u8>,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Answer, review::DecodeError> {
        let supply = snapshot.supply_chain();
        let parsed = review::parse(Api::AdmissionReview, &mut body)?;
        let mut checks = Checks::new();
        if supply.pin_digests() {
            let deadline = Instant::now() + supply.timeout();
            let pending = parsed.pending(snapshot, true);
            checks = self.verify(snapshot, pending, deadline).await;
        }
        // Parsed as an AdmissionReview, so there is a mutating answer.
        parsed
            .mutate(snapshot, &checks)
            .map(Answer::Mutated)
            .ok_or_else(|| review::DecodeError::wrong_kind("ImageReview", "\"AdmissionReview\""))
    }

    pub(super) async fn verify(
        &self,
        snapshot: &Arc<Snapshot>,
        images: Vec<String>,
        deadline: Instant,
    ) -> Checks {
        if images.is_empty() {
            return Checks::new();
        }
        let checks = verify_images(Arc::clone(snapshot), images.clone(), deadline).await;
        for image in &images {
            let outcome = checks
                .get(image)
                .map_or(VerifyOutcome::Unavailable, |c| c.outcome);
            self.metrics.observe_verification(outcome);
        }
        checks
    }

    pub(super) fn record(&self, outcome: &Outcome, generation: u64) {
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

/// Decides a review that no `verify` rule applies to.
pub(super) fn decide_now(
    mut body: Vec<u8>,
    snapshot: &Snapshot,
    api: Api,
) -> Result<Reviewed, review::DecodeError> {
    match api {
        Api::ImageReview => review::image_review(&mut body, snapshot),
        Api::AdmissionReview => review::admission_review(&mut body, snapshot),
    }
}

//! One review's view of a policy: the [`Context`] a review brings
//! (namespace, annotations, user), the [`Scope`] it resolves to (override,
//! exemption, break-glass), and what each image comes to under it
//! ([`Scope::judge`]).

use super::evaluate::Resolved;
use super::{Decision, Mode, OnError, Outcome, Reason, SupplyChain};

/// What a review tells the engine besides the images.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The namespace of the pod ("" when unknown: nothing matches it).
    pub namespace: &'a str,
    /// Pod annotations forwarded with the review, as (key, value).
    pub annotations: &'a [(&'a str, &'a str)],
    /// Who asked (AdmissionReview `request.userInfo`); `None` when the
    /// review does not say (ImageReview carries no user).
    pub user: Option<User<'a>>,
}

/// The requesting user of an AdmissionReview (`request.userInfo`).
#[derive(Debug, Clone, Copy, Default)]
pub struct User<'a> {
    /// `username`.
    pub name: &'a str,
    /// `groups`.
    pub groups: &'a [&'a str],
}

/// What one image string comes to under a [`Scope`] ([`Scope::judge`]).
#[derive(Debug, Clone, Copy)]
pub struct ImageJudgement<'s> {
    /// The policy's decision.
    pub decision: Decision<'s>,
    /// Whether it must be verified at its registry before it is admitted.
    pub verify: bool,
    /// Whether it is given by tag alone (no digest).
    pub by_tag: bool,
}

/// The rules in force for one review, resolved once from its namespace and
/// annotations.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'s> {
    pub(super) resolved: Resolved<'s>,
    pub(super) on_error: OnError,
}

impl<'s> Scope<'s> {
    /// Judges one image string (no allocation).
    pub fn evaluate(&self, image: &str) -> Decision<'s> {
        self.resolved.evaluate(image)
    }

    /// Judges one image string and says, from the same parse, whether it
    /// must then be verified at its registry (the policy allows it and a
    /// `verify` rule of `supply` applies to it: the one statement of that
    /// rule) and whether it is given by tag alone (what `/mutate` pins).
    pub fn judge(&self, image: &str, supply: &SupplyChain) -> ImageJudgement<'s> {
        let Ok(reference) = crate::reference::Reference::parse(image) else {
            return ImageJudgement {
                decision: Decision::new(Reason::InvalidReference, self.mode()),
                verify: false,
                by_tag: false,
            };
        };
        let decision = self.resolved.evaluate_parsed(&reference);
        let verify = supply.has_rules()
            && Scope::needs_verification(&decision)
            && supply.requirements(&reference).next().is_some();
        ImageJudgement {
            decision,
            verify,
            by_tag: reference.digest().is_none(),
        }
    }

    /// The mode in force for this namespace.
    pub fn mode(&self) -> Mode {
        self.resolved.rules.mode
    }

    /// Whether the break-glass annotation is in force for this review.
    pub fn break_glass(&self) -> bool {
        self.resolved.break_glass.is_some()
    }

    /// Whether an image with this policy decision must be verified: only
    /// images the policy allows outright (not exempt, not denied, not
    /// break-glass) go on to the `verify` rules.
    pub fn needs_verification(decision: &Decision<'_>) -> bool {
        decision.reason() == Reason::Allowed
    }

    /// Combines the policy `decision` of an image with the outcome of its
    /// verification: a failure becomes a deny with the failure's reason
    /// (`verification_unavailable` admitted when `onError: allow`; any
    /// failure admitted by break-glass when it is in force). Decisions
    /// other than a plain allow are returned unchanged.
    pub fn verified(&self, decision: Decision<'s>, outcome: Outcome) -> Decision<'s> {
        if !Scope::needs_verification(&decision) || outcome.is_verified() {
            return decision;
        }
        let reason = Reason::from_outcome(outcome);
        let failed = Decision::new(reason, decision.mode());
        if outcome == Outcome::Unavailable && self.on_error == OnError::Allow {
            return failed.admitted_on_error();
        }
        match self.resolved.break_glass {
            Some(annotation) => failed.broken_glass(annotation),
            None => failed,
        }
    }
}

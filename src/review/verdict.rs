//! Applies a policy scope to the images of one review and words the result.
//!
//! The decisions themselves come from [`crate::policy`]; this module only
//! combines them (a review is allowed iff every image is) and writes the
//! human texts: the denial reason, audit-mode would-denies, break-glass
//! admissions and warnings. Echoed images are quoted and escaped (by the
//! policy's `explain`, or here in debug syntax), and every list is bounded.

use std::borrow::Cow;
use std::fmt;

use smallvec::SmallVec;

use crate::policy::Outcome as Verification;
use crate::policy::{Context, Decision, Mode, Reason, Snapshot};

use super::checks::Checks;
use super::extract::Image;

use super::error::floor_char_boundary;
use super::json::join;
use super::{Admitted, AdmittedBy, Api, Summary};

/// Longest image kept in the deny log and the break-glass list; a valid
/// reference is never longer (name ≤ 255, tag ≤ 128, digest ≤ 135), so only
/// invalid ones are cut.
const MAX_IMAGE_SHOWN: usize = 1024;
/// Most distinct images named in one list; the rest are counted.
pub(super) const MAX_LISTED: usize = 64;

/// The decisions for one review, in image order (inline up to the images a
/// pod usually has: no allocation per review).
#[derive(Debug)]
pub(super) struct Verdicts<'a, 's> {
    pub(super) items: SmallVec<[(Image<'a>, Decision<'s>); 4]>,
    pub(super) mode: Mode,
    pub(super) allowed: bool,
    pub(super) generation: u64,
}

impl<'a, 's> Verdicts<'a, 's> {
    /// Judges `images` in `namespace` with the pods' `annotations`; an image
    /// that a `verify` rule applies to is judged with its result in
    /// `checks`, and as `verification_unavailable` when it has none (a
    /// check that did not run is never a success).
    pub(super) fn judge(
        snapshot: &'s Snapshot,
        ctx: &Context<'_>,
        images: impl Iterator<Item = Image<'a>>,
        checks: &Checks,
    ) -> Verdicts<'a, 's> {
        let scope = snapshot.scope(ctx);
        let supply = snapshot.supply_chain();
        let items: SmallVec<_> = images
            .map(|item| {
                let judged = scope.judge(item.image, supply);
                if judged.verify {
                    let outcome = checks
                        .get(item.image)
                        .map_or(Verification::Unavailable, |c| c.outcome);
                    (item, scope.verified(judged.decision, outcome))
                } else {
                    (item, judged.decision)
                }
            })
            .collect();
        let allowed = items
            .iter()
            .all(|(_, d): &(Image<'a>, Decision<'s>)| d.allowed());
        Verdicts {
            items,
            mode: scope.mode(),
            allowed,
            generation: snapshot.generation(),
        }
    }

    /// The distinct images that must be verified before this review can be
    /// answered (policy-allowed images that a `verify` rule applies to),
    /// plus, when `pin` is set, every other allowed image given by tag
    /// alone (its digest is resolved for `/mutate`).
    pub(super) fn pending(
        snapshot: &Snapshot,
        ctx: &Context<'_>,
        images: impl Iterator<Item = Image<'a>>,
        pin: bool,
    ) -> Vec<String> {
        let scope = snapshot.scope(ctx);
        let supply = snapshot.supply_chain();
        let mut out: Vec<String> = Vec::new();
        for Image { image, .. } in images {
            if out.iter().any(|i| i == image) {
                continue;
            }
            let judged = scope.judge(image, supply);
            let resolve = pin && judged.decision.verdict_allowed() && judged.by_tag;
            if judged.verify || resolve {
                out.push(image.to_owned());
            }
        }
        out
    }

    /// A review with nothing to judge (a kind without pods, DELETE):
    /// allowed, in the mode of its namespace.
    pub(super) fn nothing(snapshot: &Snapshot, namespace: &str) -> Verdicts<'a, 's> {
        let scope = snapshot.scope(&Context {
            namespace,
            ..Context::default()
        });
        Verdicts {
            items: SmallVec::new(),
            mode: scope.mode(),
            allowed: true,
            generation: snapshot.generation(),
        }
    }

    /// The summary the server logs and counts.
    pub(super) fn outcome(&self, api: Api, namespace: &str) -> Summary {
        Summary {
            api,
            allowed: self.allowed,
            mode: self.mode,
            reasons: self.items.iter().map(|(_, d)| d.reason()).collect(),
            namespace: namespace.to_owned(),
            denied: self
                .items
                .iter()
                .filter(|(_, d)| !d.verdict_allowed())
                .map(|(item, d)| (shown_item(item), d.reason()))
                .collect(),
            user: String::new(),
            admitted: self
                .items
                .iter()
                .filter(|(_, d)| d.reason() == Reason::BreakGlass || d.is_admitted_on_error())
                .map(|(item, d)| Admitted {
                    image: shown_item(item),
                    reason: d.overridden().unwrap_or(d.reason()),
                    by: if d.reason() == Reason::BreakGlass {
                        AdmittedBy::BreakGlass
                    } else {
                        AdmittedBy::OnErrorAllow
                    },
                })
                .collect(),
        }
    }

    /// Images the review is denied for (empty in audit mode).
    fn denied(&self) -> impl Iterator<Item = &(Image<'a>, Decision<'s>)> {
        self.items.iter().filter(|(_, d)| !d.allowed())
    }

    /// Images denied by the policy but admitted because of audit mode.
    fn would_deny(&self) -> impl Iterator<Item = &(Image<'a>, Decision<'s>)> {
        self.items
            .iter()
            .filter(|(_, d)| d.allowed() && !d.verdict_allowed())
    }

    fn break_glass(&self) -> impl Iterator<Item = &(Image<'a>, Decision<'s>)> {
        self.items
            .iter()
            .filter(|(_, d)| d.reason() == Reason::BreakGlass)
    }

    fn warned(&self) -> impl Iterator<Item = &(Image<'a>, Decision<'s>)> {
        self.items.iter().filter(|(_, d)| d.warning().is_some())
    }

    pub(super) fn has_denied(&self) -> bool {
        self.denied().next().is_some()
    }

    pub(super) fn has_would_deny(&self) -> bool {
        self.would_deny().next().is_some()
    }

    pub(super) fn has_break_glass(&self) -> bool {
        self.break_glass().next().is_some()
    }

    pub(super) fn has_warnings(&self) -> bool {
        self.warned().next().is_some()
    }

    /// Every denied image and why, one per `; ` (CONTRACT §3 rule 8).
    pub(super) fn write_denied(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write_explained(out, self.denied())
    }

    /// What audit mode let through, worded like a denial.
    pub(super) fn write_would_deny(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write_explained(out, self.would_deny())
    }

    /// The images a break-glass annotation admitted.
    pub(super) fn write_break_glass(&self, out: &mut impl fmt::Write) -> fmt::Result {
        join(
            out,
            distinct(self.break_glass()),
            ", ",
            MAX_LISTED,
            |out, (item, _)| write!(out, "{:?}{}", shown(item.image), VolumeOf(item)),
        )
    }

    /// Every warning, one per `; `.
    pub(super) fn write_warnings(&self, out: &mut impl fmt::Write) -> fmt::Result {
        write_explained(out, self.warned())
    }

    /// The AdmissionReview `warnings`, one image each: audit-mode
    /// would-denies first, then allowed images with a policy warning.
    pub(super) fn warning_lines(&self) -> impl Iterator<Item = (Image<'a>, Decision<'s>)> + '_ {
        distinct(self.would_deny()).chain(distinct(self.warned()))
    }
}

/// One human sentence per distinct image, joined by `; `.
fn write_explained<'x, 'a: 'x, 's: 'x>(
    out: &mut impl fmt::Write,
    items: impl Iterator<Item = &'x (Image<'a>, Decision<'s>)> + 'x,
) -> fmt::Result {
    join(out, distinct(items), "; ", MAX_LISTED, |out, (item, d)| {
        explain(out, item, &d)
    })
}

/// The policy's sentence for one image (it quotes, escapes and shortens
/// the image itself; the output sink caps the whole text), after the name
/// of its image volume when it came from one.
pub(super) fn explain(out: &mut impl fmt::Write, item: Image<'_>, d: &Decision<'_>) -> fmt::Result {
    if let Some(volume) = item.volume() {
        write!(out, "image volume {:?}: ", shown(volume))?;
    }
    write!(out, "{}", d.explain(item.image))
}

/// `items` without repeats of an image already listed (the same image in
/// two containers is judged the same). Only the first [`MAX_LISTED`]
/// distinct images are remembered, so the cost stays linear.
fn distinct<'x, 'a: 'x, 's: 'x>(
    items: impl Iterator<Item = &'x (Image<'a>, Decision<'s>)> + 'x,
) -> impl Iterator<Item = (Image<'a>, Decision<'s>)> + 'x {
    let mut seen: Vec<Image<'a>> = Vec::new();
    items.filter_map(move |&(image, decision)| {
        if seen.iter().any(|s| s.same(&image)) {
            return None;
        }
        if seen.len() < MAX_LISTED {
            seen.push(image);
        }
        Some((image, decision))
    })
}

/// The image as logged: cut (see [`shown`]), followed by its image volume's
/// name when it came from one.
fn shown_item(item: &Image<'_>) -> String {
    match item.volume() {
        None => shown(item.image).into_owned(),
        Some(_) => format!("{}{}", shown(item.image), VolumeOf(*item)),
    }
}

/// ` (image volume "NAME")` after an image that came from a volume (the
/// name cut like an image), nothing otherwise.
struct VolumeOf<'a>(Image<'a>);

impl fmt::Display for VolumeOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.volume() {
            Some(volume) => write!(f, " (image volume {:?})", shown(volume)),
            None => Ok(()),
        }
    }
}

/// `image` cut to [`MAX_IMAGE_SHOWN`] bytes (marked with `…`).
fn shown(image: &str) -> Cow<'_, str> {
    let cut = floor_char_boundary(image, MAX_IMAGE_SHOWN);
    if cut == image.len() {
        Cow::Borrowed(image)
    } else {
        Cow::Owned(format!("{}…", &image[..cut]))
    }
}

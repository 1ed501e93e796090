//! One verification round for a digest: its own evidence, and under
//! `multiArch: allPlatforms` that of every runnable platform manifest its
//! index lists, fetched concurrently.

use super::evidence;
use super::registry::{self, Manifest, RegistryErrorKind, Repository};
use super::{Digest, Verifier};
use crate::policy::{MultiArch, Outcome, Requirement};

impl Verifier {
    /// One verification round for `digest`: its evidence, and with
    /// `multiArch: allPlatforms` that of the platform manifests its index
    /// lists, all fetched concurrently; verified if `digest` carries
    /// everything the requirement asks for, or (`allPlatforms`) every
    /// runnable platform manifest of its index does; else the reason of
    /// `digest` itself.
    pub(super) async fn round(
        &self,
        repo: &Repository,
        digest: Digest,
        req: &Requirement,
    ) -> Outcome {
        let now = (self.clock)();
        // Boxed: a round's future (every concurrent fetch of it) is large,
        // and a caller may await it on a small stack.
        let own = Box::pin(evidence::check(&self.registry, repo, digest, req, now));
        if req.multi_arch() == MultiArch::Index {
            return own.await.unwrap_or(Outcome::Unavailable);
        }
        let reference = digest.to_string();
        let listing = self.registry.manifest(repo, &reference, Some(digest));
        let (own, listing) = tokio::join!(own, listing);
        let own = own.unwrap_or(Outcome::Unavailable);
        if own == Outcome::Verified {
            return own;
        }
        let index = match listing {
            Ok(Some(fetched)) => Manifest::parse(&fetched.bytes, fetched.media_type.as_deref()),
            // No index (a manifest whose own evidence decided), or one whose
            // bytes are not its digest's: the digest's own verdict.
            Ok(None) => None,
            Err(e) if e.kind() != RegistryErrorKind::DigestMismatch => {
                return Outcome::Unavailable;
            }
            Err(_) => None,
        };
        let Some(platforms) = index.as_ref().and_then(runnable_platforms) else {
            return own;
        };
        let rounds = platforms
            .iter()
            .map(|d| Box::pin(evidence::check(&self.registry, repo, *d, req, now)));
        let outcomes = futures_util::future::join_all(rounds).await;
        if outcomes.iter().all(|o| matches!(o, Ok(Outcome::Verified))) {
            Outcome::Verified
        } else if outcomes.iter().any(|o| o.is_err()) && own == Outcome::Unavailable {
            Outcome::Unavailable
        } else {
            own
        }
    }
}

/// Platform manifests of one index checked for evidence, at most.
const MAX_PLATFORMS: usize = 16;

/// The digests of every runnable platform manifest `index` lists; `None`
/// when there is none, or when not every platform can be shown signed (an
/// entry of another digest algorithm, more entries than are checked).
fn runnable_platforms(index: &Manifest) -> Option<Vec<Digest>> {
    let runnable: Vec<&registry::Descriptor> =
        index.manifests.iter().filter(|d| d.runnable()).collect();
    let digests: Vec<Digest> = runnable
        .iter()
        .filter_map(|d| Digest::parse(&d.digest).ok())
        .collect();
    let checkable = digests.len() == runnable.len() && digests.len() <= MAX_PLATFORMS;
    (checkable && !digests.is_empty()).then_some(digests)
}

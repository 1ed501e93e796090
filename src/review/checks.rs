//! Verification results handed to a review by its caller: the server or
//! the CLI verifies the images [`pending`](super::Parsed::pending)
//! names against the registry, and the review combines each outcome with
//! the policy decision. Keyed by the image string exactly as the review
//! carries it.

use std::collections::HashMap;

use crate::policy::Outcome;
use crate::verify::Digest;

/// The verification of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The verdict of every `verify` rule that applies (the first failure).
    pub outcome: Outcome,
    /// The digest that was verified (or resolved), when known.
    pub digest: Option<Digest>,
}

/// Verification results per image string.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    by_image: HashMap<String, Check>,
}

impl Checks {
    /// No results: every image that needs one is judged unavailable.
    pub fn new() -> Checks {
        Checks::default()
    }

    /// Records the result for `image`.
    pub fn insert(&mut self, image: String, check: Check) {
        self.by_image.insert(image, check);
    }

    /// The result for `image`, if one was recorded.
    pub fn get(&self, image: &str) -> Option<&Check> {
        self.by_image.get(image)
    }

    /// How many images have a result.
    pub fn len(&self) -> usize {
        self.by_image.len()
    }

    /// Whether no image has a result.
    pub fn is_empty(&self) -> bool {
        self.by_image.is_empty()
    }
}

//! The policy engine: a YAML `ImagePolicy` compiled into an immutable
//! [`Snapshot`] that judges image references.
//!
//! Data flows one way: [`source`](self) (serde types of the YAML) →
//! compile (patterns checked, errors with line and column) → trie →
//! [`Snapshot`]. A review resolves its namespace once with
//! [`Snapshot::scope`], then calls [`Scope::evaluate`] per image; the hot
//! path does not allocate.
//!
//! This module does no I/O and no async: reading the file and swapping the
//! snapshot are the server's job.

mod decision;
mod error;

pub use decision::{Decision, Mode, Reason, Warning};
pub use error::{CompileError, CompileErrors};

use std::fmt;

/// The built-in default policy (the text of `examples/policy.yaml`).
pub const BUILTIN_POLICY: &str = include_str!("../../examples/policy.yaml");

/// A compiled, immutable policy; cheap to share across threads.
#[derive(Debug)]
pub struct Snapshot {
    generation: u64,
    mode: Mode,
}

impl Snapshot {
    /// Parses and compiles a policy; every error carries its line and column.
    pub fn from_yaml(text: &str) -> Result<Snapshot, CompileErrors> {
        let _ = text;
        Ok(Snapshot {
            generation: 0,
            mode: Mode::Enforce,
        })
    }

    /// The built-in default policy ([`BUILTIN_POLICY`]).
    pub fn builtin() -> Snapshot {
        Snapshot::from_yaml(BUILTIN_POLICY).expect("the built-in policy compiles (tested)")
    }

    /// The generation set by [`Snapshot::with_generation`]; 0 by default.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Returns the snapshot with its generation number set.
    pub fn with_generation(mut self, generation: u64) -> Snapshot {
        self.generation = generation;
        self
    }

    /// The policy's base mode (an override may change it per namespace).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Resolves exemption, override and break-glass for one review.
    pub fn scope<'s>(&'s self, ctx: &Context<'_>) -> Scope<'s> {
        let _ = ctx;
        Scope { snapshot: self }
    }
}

/// What a review tells the engine besides the images.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The namespace of the pod ("" when unknown).
    pub namespace: &'a str,
    /// Pod annotations forwarded with the review (key, value).
    pub annotations: &'a [(&'a str, &'a str)],
}

/// The rules that apply to one review, resolved once per namespace.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'s> {
    snapshot: &'s Snapshot,
}

impl<'s> Scope<'s> {
    /// Judges one image string.
    pub fn evaluate(&self, image: &str) -> Decision<'s> {
        let _ = image;
        Decision::new(Reason::Allowed, self.snapshot.mode)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

//! imagegate: a Kubernetes image admission webhook.
//!
//! Data flows one way: a request body is decoded by [`review`], each image
//! string is parsed by [`mod@reference`], judged by a compiled [`policy`]
//! snapshot, and the verdicts are written back by [`review`]; [`server`]
//! carries bytes in and out and never decides anything itself.
//!
//! The pure core ([`mod@reference`], [`policy`]) does no I/O and no async.

#![forbid(unsafe_code)]

pub mod batch;
pub mod crypto;
pub mod decide;
pub mod load;
pub mod metrics;
pub mod policy;
pub mod reference;
pub mod review;
pub mod server;
pub mod verify;

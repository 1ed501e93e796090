//! Helpers shared by the integration tests: an in-process server and its
//! clients (`server`), a real registry process and the artifacts pushed to
//! it (`registry`), hostile registries and proxies (`hostile`).

pub mod hostile;
pub mod registry;
pub mod server;

//! Helpers shared by the integration tests: an in-process server and its
//! clients (`server`), `imagegate serve` as a child process (`process`), a
//! real registry process and the artifacts pushed to it (`registry`),
//! hostile registries and proxies (`hostile`), table cases by name
//! (`cases`), a directory served over HTTP (`files`).

pub(crate) mod cases;
pub mod files;
pub mod hostile;
pub mod process;
pub mod registry;
pub mod server;

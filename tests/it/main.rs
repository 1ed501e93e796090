//! The integration tests, one binary: each former test file is a module,
//! the helpers they share live in `support/` (as ripgrep lays its tests
//! out). One binary links the library once instead of once per file, which
//! is most of the build time of `cargo test`. Run one area with its module
//! path, e.g. `cargo test --test it hardening::`.

mod support;

mod before_the_cluster;
mod dashboards_metrics;
mod hardening;
mod policy_decisions;
mod policy_file;
mod policy_matching;
mod policy_trie_props;
mod review_golden;
mod review_malformed;
mod review_proptest;
mod server_abuse;
mod server_h3;
mod server_handler;
mod server_http;
mod server_process;
mod server_reload;
mod server_sighup;
mod server_tls;
mod sigstore_conformance;
mod verify_hostile_registry;
mod verify_key_types;
mod verify_keyless;
mod verify_registry;
mod verify_server;
mod verify_tuf;

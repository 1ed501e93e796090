//! Properties of the policy loader on arbitrary text: never panics; every
//! rejection names at least one error with a location; an accepted policy
//! compiles into a snapshot that can judge images without panicking, and
//! that never admits a local image ID (`sha256:<hex>`), exempt namespace
//! and break-glass annotation or not.

#![no_main]

use imagegate::policy::{Context, Reason, Snapshot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Snapshot::from_yaml(text) {
        Ok(snapshot) => {
            let annotations = [("break-glass.image-policy.k8s.io/reason", "incident")];
            for namespace in ["default", "kube-system", "prod-a", ""] {
                let ctx = Context {
                    namespace,
                    annotations: &annotations,
                    user: None,
                };
                let scope = snapshot.scope(&ctx);
                for image in [
                    "nginx",
                    "nginx:latest",
                    "ghcr.io/a/b:v1.2.3",
                    "x@sha256:0",
                    text,
                ] {
                    let d = scope.evaluate(image);
                    let _ = d.explain(image).to_string();
                    assert!(d.allowed() || !d.verdict_allowed());
                }
                for id in [
                    "sha256:4f3c9a0e1b2d3c4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f",
                    "sha256:4f3c",
                    "sha512:ab",
                ] {
                    let d = scope.evaluate(id);
                    assert_eq!(d.reason(), Reason::InvalidReference, "{id}");
                    assert!(!d.verdict_allowed(), "{id}");
                }
            }
        }
        Err(errors) => {
            assert!(errors.len() > 0, "a rejection carries at least one error");
            assert!(!errors.to_string().is_empty());
        }
    }
});

//! Properties of the policy loader on arbitrary text: never panics; every
//! rejection names at least one error with a location; an accepted policy
//! compiles into a snapshot that can judge images without panicking.

#![no_main]

use imagegate::policy::{Context, Snapshot};
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
            }
        }
        Err(errors) => {
            assert!(errors.len() > 0, "a rejection carries at least one error");
            assert!(!errors.to_string().is_empty());
        }
    }
});

//! `check -f` on arbitrary bytes: the YAML reader never panics; every
//! object it yields is valid JSON with its line inside the input, and a
//! judged object is allowed exactly when each of its images is.

#![no_main]

use std::sync::LazyLock;

use imagegate::batch::yaml;
use imagegate::policy::Snapshot;
use imagegate::review::{Checks, ObjectContext};
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Snapshot> = LazyLock::new(Snapshot::builtin);

fuzz_target!(|data: &[u8]| {
    // YAML's line breaks: LF, CR LF, and a lone CR.
    let breaks = data
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && data.get(i + 1) != Some(&b'\n')))
        .count();
    let lines = breaks as u64 + 1;
    let mut reader = data;
    let _ = yaml::documents(&mut reader, |document| {
        assert!(document.line <= lines, "line {} of {lines}", document.line);
        serde_json::from_slice::<serde_json::Value>(&document.json).expect("every object is JSON");
        let mut json = document.json;
        let ctx = ObjectContext {
            namespace: "default",
            user: None,
        };
        if let Ok(judged) = imagegate::review::object(&mut json, &POLICY, &ctx, &Checks::new()) {
            assert_eq!(judged.allowed, judged.images.iter().all(|i| i.allowed));
            assert!(judged.judged || judged.images.is_empty());
        }
        Ok(())
    });
});

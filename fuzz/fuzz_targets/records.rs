//! `replay` on arbitrary bytes: the line reader never panics; every record
//! it yields is JSON, and one that decodes as a review is judged without
//! panicking, allowed exactly when each of its images is.

#![no_main]

use std::io::BufRead;
use std::sync::LazyLock;

use imagegate::batch::records::{self, AuditIds};
use imagegate::policy::Snapshot;
use imagegate::review::Checks;
use libfuzzer_sys::fuzz_target;

static POLICY: LazyLock<Snapshot> = LazyLock::new(Snapshot::builtin);

fuzz_target!(|data: &[u8]| {
    let mut reader: Box<dyn BufRead> = Box::new(data);
    let mut seen = AuditIds::default();
    let _ = records::read(
        "fuzz",
        &mut reader,
        &mut seen,
        |record| {
            serde_json::from_slice::<serde_json::Value>(&record.body)
                .expect("every record is JSON");
            let mut body = record.body.clone();
            let judged = imagegate::review::parse(record.api, &mut body)
                .map(|parsed| parsed.judged(&POLICY, &Checks::new()));
            if let Ok(judged) = judged {
                assert_eq!(judged.allowed, judged.images.iter().all(|i| i.allowed));
            }
        },
        |_| {},
    );
});

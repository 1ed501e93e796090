use super::*;

fn all(text: &[u8]) -> (Vec<Record>, Vec<Skip>) {
    let mut records = Vec::new();
    let mut skips = Vec::new();
    let mut reader: Box<dyn BufRead> = Box::new(text);
    let mut seen = AuditIds::default();
    let err = read(
        "f",
        &mut reader,
        &mut seen,
        |r| records.push(r),
        |s| skips.push(s),
    );
    assert!(err.is_none());
    (records, skips)
}

#[test]
fn events_become_admission_reviews_once() {
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"nginx"}]}}"#;
    let event = |stage: &str| {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a1","stage":"{stage}","verb":"create","user":{{"username":"u","groups":["g"]}},"objectRef":{{"resource":"pods","namespace":"ns","name":"p","apiVersion":"v1"}},"requestObject":{pod}}}"#
        )
    };
    let text = format!(
        "{}\n{}\nnot json\n{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"verb\":\"get\",\"objectRef\":{{\"resource\":\"pods\"}}}}\n",
        event("RequestReceived"),
        event("ResponseComplete")
    );
    let (records, skips) = all(text.as_bytes());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].source, "f:1");
    let v: serde_json::Value = serde_json::from_slice(&records[0].body).unwrap();
    assert_eq!(v["request"]["kind"]["kind"], "Pod");
    assert_eq!(v["request"]["namespace"], "ns");
    assert_eq!(v["request"]["userInfo"]["username"], "u");
    assert_eq!(
        v["request"]["object"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    assert_eq!(skips, [Skip::RepeatedStage, Skip::Broken, Skip::OtherVerb]);
}

#[test]
fn long_lines_are_skipped_and_reading_goes_on() {
    let mut text = vec![b'x'; MAX_LINE_BYTES + 10];
    text.extend_from_slice(
        b"\n{\"apiVersion\":\"imagepolicy.k8s.io/v1alpha1\",\"kind\":\"ImageReview\"}\n",
    );
    let (records, skips) = all(&text);
    assert_eq!(skips, [Skip::TooLong]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].source, "f:2");
    assert_eq!(records[0].api, Api::ImageReview);
}

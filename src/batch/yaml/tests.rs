use super::*;

fn all(text: &str) -> Result<Vec<Document>, YamlError> {
    let mut out = Vec::new();
    documents(&mut text.as_bytes(), |d| {
        out.push(d);
        Ok(())
    })?;
    Ok(out)
}

#[test]
fn streams_documents_with_lines() {
    let docs = all(
        "# leading comment\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1\n---\n---\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{image: x}]}\n",
    )
    .unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].line, 3);
    assert_eq!(container_line(&docs[0].images, "containers", 0), Some(8));
    let v: serde_json::Value = serde_json::from_slice(&docs[0].json).unwrap();
    assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1");
    assert_eq!(docs[1].line, 13);
    // A flow mapping: the whole item is on one line.
    assert_eq!(container_line(&docs[1].images, "containers", 0), Some(14));
}

#[test]
fn lines_follow_lists_and_names() {
    let docs = all(
        "kind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers:\n  - name: migrate\n    image: app:1\n  containers:\n  - name: main\n    image: app:1\n  volumes:\n  - name: cfg\n    configMap: {name: c}\n  - name: model\n    image:\n      reference: m:1\n",
    )
    .unwrap();
    let d = &docs[0];
    assert_eq!(d.line, 1);
    assert_eq!(container_line(&d.images, "initContainers", 0), Some(7));
    assert_eq!(container_line(&d.images, "containers", 0), Some(10));
    assert_eq!(volume_line(&d.images, "model"), Some(16));
    assert_eq!(volume_line(&d.images, "cfg"), None);
    // The object starts at its first key, even when that key's value
    // is a block on the next lines.
    let docs = all("---\nmetadata:\n  name: x\nkind: Pod\n").unwrap();
    assert_eq!(docs[0].line, 2);
}

#[test]
fn lists_nest_and_duplicate_keys_keep_the_last_value() {
    let docs = all(
        "kind: List\nitems:\n- kind: List\n  items:\n  - kind: Pod\n    metadata: {name: a}\n  - kind: Pod\n    metadata: {name: b}\n- kind: Pod\n  metadata: {name: c}\n",
    )
    .unwrap();
    assert_eq!(docs.len(), 3);
    let docs = all("kind: Pod\nkind: Deployment\n").unwrap();
    assert_eq!(
        std::str::from_utf8(&docs[0].json).unwrap(),
        r#"{"kind":"Deployment"}"#
    );
}

#[test]
fn a_document_that_expands_too_far_is_refused() {
    let big = "x".repeat(1 << 20);
    let mut text = format!("a: &a {big}\nb: [");
    for _ in 0..100 {
        text.push_str("*a,");
    }
    text.push_str("*a]\n");
    let e = all(&text).unwrap_err();
    assert!(e.message.contains("expands to more than"), "{e:?}");
    // The budget is per document: the next one reads.
    let ok = all(&format!(
        "a: &a {big}\nb: [*a, *a]\n---\nc: &c {big}\nd: [*c, *c]\n"
    ));
    assert!(ok.is_ok());
}

#[test]
fn errors_are_located() {
    let e = all("kind: Pod\nspec:\n  a: [1\n").unwrap_err();
    assert!(e.line >= 3, "{e:?}");
    let docs =
        all("kind: Pod\nspec:\n  containers:\n  - image: good:1\n    image: evil:1\n").unwrap();
    let v: serde_json::Value = serde_json::from_slice(&docs[0].json).unwrap();
    assert_eq!(
        v["spec"]["containers"][0]["image"], "evil:1",
        "the last value wins"
    );
    let e = all("- 1\n- 2\n").unwrap_err();
    assert!(e.message.contains("mapping"), "{e:?}");
}

#[test]
fn alias_bombs_are_refused() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 0..12 {
        let prev = if i == 0 {
            "a".to_owned()
        } else {
            format!("b{}", i - 1)
        };
        bomb.push_str(&format!("b{i}: &b{i} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    assert!(all(&bomb).is_err());
}

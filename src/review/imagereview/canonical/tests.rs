use proptest::prelude::*;

use super::super::{BENDING_BYTES, LOAD_TEST_BODY, assert_readings_agree, bent};
use super::*;

/// Whether the canonical reading took `body`, after checking that every
/// reading that takes it reads what the general way reads.
fn agree(body: &[u8]) -> bool {
    assert_readings_agree(body);
    read(body).is_some()
}

/// The plugin's form around `spec`'s members.
fn review(spec: &str) -> String {
    format!(
        r#"{{"kind":"ImageReview","apiVersion":"imagepolicy.k8s.io/v1alpha1","metadata":{{"creationTimestamp":null}},"spec":{{{spec}}},"status":{{"allowed":false}}}}"#
    )
}

#[test]
fn the_plugins_bodies_are_read_here_as_the_other_ways_read_them() {
    assert!(agree(LOAD_TEST_BODY));
    let taken = [
        review(
            r#""containers":[{"image":"a"},{},{"image":"b:1"}],"annotations":{"a.image-policy.k8s.io/b":"c","d":""},"namespace":"ns""#,
        ),
        review(""),
        review(r#""containers":[{"image":""}]"#),
        review(r#""annotations":{"k":"v"}"#),
        review(r#""namespace":"n""#),
        review(r#""containers":[{}],"namespace":"n""#),
        // Newer apimachinery leaves `creationTimestamp` out; no status;
        // the encoder's newline.
        review(r#""namespace":"n""#).replace(r#""creationTimestamp":null"#, ""),
        review(r#""namespace":"n""#).replace(r#","status":{"allowed":false}"#, ""),
        format!("{}\n", review(r#""namespace":"n""#)),
        // Strings holding JSON's punctuation are still strings.
        review(r#""containers":[{"image":"a},{\u005d:["}],"annotations":{"{":"}"}"#)
            .replace(r"\u005d", "]"),
    ];
    for body in &taken {
        assert!(agree(body.as_bytes()), "not taken: {body}");
    }
    let found = read(taken[0].as_bytes()).unwrap();
    let parts = found.parts(&taken[0]);
    let images: Vec<(&str, &str)> = parts.images.iter().map(|i| (i.image, i.name)).collect();
    assert_eq!(images, [("a", ""), ("", ""), ("b:1", "")]);
    assert_eq!(
        parts.annotations[..],
        [("a.image-policy.k8s.io/b", "c"), ("d", "")]
    );
    assert_eq!(parts.namespace, "ns");
}

#[test]
fn any_other_form_is_left_to_the_scan_and_the_general_way() {
    let left = [
        // Whitespace, another order, a pretty-printed body.
        format!(" {}", review("")),
        format!("{}\n\n", review("")),
        review(r#""namespace":"n","containers":[{"image":"a"}]"#),
        review(r#""containers":[{"image":"a"}]"#).replacen(
            r#""kind":"ImageReview","apiVersion":"imagepolicy.k8s.io/v1alpha1""#,
            r#""apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview""#,
            1,
        ),
        review(r#""containers":[ {"image":"a"}]"#),
        // Nulls, empty lists, fields Go leaves out or never writes.
        review(r#""containers":null"#),
        review(r#""containers":[]"#),
        review(r#""annotations":{}"#),
        review(r#""containers":[null]"#),
        review(r#""containers":[{"image":null}]"#),
        review(r#""containers":[{"image":"a","name":"b"}]"#),
        review(r#""annotations":{"k":null}"#),
        review(r#""namespace":null"#),
        review(r#""other":"x""#),
        review("").replace("false", "true"),
        review("").replace(r#""creationTimestamp":null"#, r#""name":"x""#),
        // An escape, a non-ASCII look-alike, control characters.
        review(r#""containers":[{"image":"a\u0041"}]"#),
        review(r#""containers":[{"image":"a\"b"}]"#),
        review(r#""containers":[{"image":"registry.k8s.іo/pause:3.9"}]"#),
        review("\"containers\":[{\"image\":\"a\tb\"}]"),
        review("\"namespace\":\"a\u{1}b\""),
        // A repeated annotation key, repeated members.
        review(r#""annotations":{"k":"a","k":"b"}"#),
        review(r#""namespace":"a","namespace":"b""#),
        review(r#""containers":[{"image":"a"}],"containers":[{"image":"b"}]"#),
        // Wrong apiVersion or kind, syntax errors, trailing data.
        review("").replace("v1alpha1", "v1"),
        review("").replace("ImageReview", "imagereview"),
        review(r#""containers":[{"image":"a"},]"#),
        review(r#""containers":[{"image":"a"}"#),
        review(r#""containers":[{"image":"a}]"#),
        review(r#""namespace":"n"#),
        format!("{}}}", review("")),
        format!("{}x", review("")),
        review("").trim_end_matches('}').to_owned(),
        String::new(),
        "\n".to_owned(),
    ];
    for body in &left {
        assert!(!agree(body.as_bytes()), "taken: {body}");
    }
    // More annotations than the pairwise repeated-key check is for: left
    // to the general way, which sorts; at the limit, read here.
    let annotations = |n: usize| {
        let pairs: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
        review(&format!(r#""annotations":{{{}}}"#, pairs.join(",")))
    };
    assert!(!agree(annotations(MAX_ANNOTATIONS + 1).as_bytes()));
    assert!(agree(annotations(MAX_ANNOTATIONS).as_bytes()));
    // Too long to be read here (the general way reads it).
    let images: String = (0..3000)
        .map(|i| format!(r#"{{"image":"image-{i:05}"}},"#))
        .collect();
    let long = review(&format!(
        r#""containers":[{}]"#,
        images.trim_end_matches(',')
    ));
    assert!(long.len() > MAX_BODY);
    assert!(read(long.as_bytes()).is_none());
}

/// A string of the plugin's form: printable ASCII but `"` and `\`, with
/// JSON's punctuation and look-alikes of the fixed pieces in it.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9./:@_-]{0,12}",
        1 => "[ -!#-\\[\\]-~]{0,12}",
        1 => Just("\"image\":\"".replace('"', "'")),
        1 => Just("},{".to_owned()),
    ]
}

/// A body of the plugin's exact form.
fn arb_canonical() -> impl Strategy<Value = String> {
    let image = proptest::option::of(text());
    let containers = proptest::option::of(proptest::collection::vec(image, 1..12));
    let annotations = proptest::option::of(proptest::collection::btree_map(text(), text(), 1..5));
    let namespace = proptest::option::of(text());
    (
        containers,
        annotations,
        namespace,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(containers, annotations, namespace, stamp, status, newline)| {
                let mut members = Vec::new();
                if let Some(containers) = containers {
                    let items: Vec<String> = containers
                        .iter()
                        .map(|image| match image {
                            Some(image) => format!(r#"{{"image":"{image}"}}"#),
                            None => "{}".to_owned(),
                        })
                        .collect();
                    members.push(format!(r#""containers":[{}]"#, items.join(",")));
                }
                if let Some(annotations) = annotations {
                    let pairs: Vec<String> = annotations
                        .iter()
                        .map(|(k, v)| format!(r#""{k}":"{v}""#))
                        .collect();
                    members.push(format!(r#""annotations":{{{}}}"#, pairs.join(",")));
                }
                if let Some(namespace) = namespace {
                    members.push(format!(r#""namespace":"{namespace}""#));
                }
                let mut body = review(&members.join(","));
                if !stamp {
                    body = body.replace(r#""creationTimestamp":null"#, "");
                }
                if !status {
                    body = body.replace(r#","status":{"allowed":false}"#, "");
                }
                if newline {
                    body.push('\n');
                }
                body
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Every body of the plugin's form is read here, as the general way
    /// reads it.
    #[test]
    fn the_plugins_form_is_read_here(body in arb_canonical()) {
        prop_assert!(agree(body.as_bytes()), "not taken: {}", body);
    }

    /// Bodies bent by one byte (inserted, removed or replaced): whichever
    /// reading takes one reads what the general way reads.
    #[test]
    fn bent_bodies_agree(
        body in arb_canonical(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(BENDING_BYTES),
        how in 0..3u8,
    ) {
        agree(&bent(body, at, byte, how));
    }
}

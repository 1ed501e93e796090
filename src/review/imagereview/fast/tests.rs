use proptest::prelude::*;

use super::super::{BENDING_BYTES, LOAD_TEST_BODY, assert_readings_agree, bent};
use super::*;

/// Whether the one-pass scan took `body`, after checking that every
/// reading that takes it reads what the general way reads.
fn agree(body: &[u8]) -> bool {
    assert_readings_agree(body);
    scan(body).is_some()
}

fn review(spec: &str) -> String {
    format!(
        r#"{{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview","metadata":{{"creationTimestamp":null}},"spec":{spec},"status":{{"allowed":false}}}}"#
    )
}

#[test]
fn the_plugins_bodies_take_the_fast_way_and_read_the_same() {
    assert!(agree(LOAD_TEST_BODY));
    let taken = [
        review(r#"{"containers":[{"image":"a"},{"image":"b","name":"c"}],"namespace":"ns"}"#),
        review(r#"{"containers":[],"annotations":{},"namespace":""}"#),
        review(r#"{}"#),
        // null is absent; a null container an empty image; a null
        // annotation value "".
        review(
            r#"{"containers":null,"annotations":null,"namespace":null,"x":[true,false,null,{"y":[]}]}"#,
        ),
        review(r#"{"containers":[null,{},{"image":null,"name":null}]}"#),
        review(r#"{"annotations":{"a.image-policy.k8s.io/b":null,"c":"d"}}"#),
        // Whitespace anywhere JSON allows it; unknown keys twice.
        format!(
            " \t\r\n{} \n",
            review(r#" { "containers" : [ { "image" : "a" , "x" : 1e0 } ] } "#)
                .replace("1e0", "\"1\"")
        ),
        review(r#"{"u":1}"#).replace("\"u\":1", "\"u\":\"1\",\"u\":\"2\""),
        // Key order does not matter.
        r#"{"spec":{"namespace":"n"},"kind":"ImageReview","apiVersion":"imagepolicy.k8s.io/v1alpha1"}"#.to_owned(),
    ];
    for body in &taken {
        assert!(agree(body.as_bytes()), "not taken: {body}");
    }
    let body = taken[4].as_bytes();
    let parts = scan(body)
        .unwrap()
        .parts(std::str::from_utf8(body).unwrap());
    let images: Vec<(&str, &str)> = parts.images.iter().map(|i| (i.image, i.name)).collect();
    assert_eq!(images, vec![("", ""); 3]);
}

#[test]
fn anything_unusual_goes_the_general_way() {
    let images: String = (0..=MAX_IMAGES)
        .map(|i| format!(r#"{{"image":"i{i}"}},"#))
        .collect();
    let many_images = review(&format!(
        r#"{{"containers":[{}]}}"#,
        images.trim_end_matches(',')
    ));
    let annotations: String = (0..=MAX_ANNOTATIONS)
        .map(|i| format!(r#""k{i}":"v","#))
        .collect();
    let many_annotations = review(&format!(
        r#"{{"annotations":{{{}}}}}"#,
        annotations.trim_end_matches(',')
    ));
    let deep = review(&format!(
        r#"{{"x":{}{}}}"#,
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    ));
    let refused = [
        String::new(),
        "   ".to_owned(),
        "null".to_owned(),
        "[]".to_owned(),
        // Non-ASCII (a look-alike letter), an escape, a control character.
        review(r#"{"containers":[{"image":"registry.k8s.іo/pause:3.9"}]}"#),
        review(r#"{"containers":[{"image":"a\u0041"}]}"#),
        review("{\"containers\":[{\"image\":\"a\tb\"}]}"),
        review("{\"containers\":[{\"image\":\"a\nb\"}]}"),
        review("{\"namespace\":\"a\rb\"}"),
        review("{\"namespace\":\"a\u{1}b\"}"),
        review("{\u{1}}"),
        // A number, anywhere.
        review(r#"{"containers":[{"image":"a","x":1}]}"#),
        // Listed keys twice, at every level.
        review(r#"{"containers":[],"containers":[]}"#),
        review(r#"{"containers":[{"image":"a","image":"b"}]}"#),
        review(r#"{"containers":[{"name":"a","name":"b"}]}"#),
        review(r#"{"namespace":"a","namespace":"b"}"#),
        review(r#"{"annotations":{},"annotations":{}}"#),
        review(r#"{"annotations":{"k":"a","k":"b"}}"#),
        review("{}").replacen("\"kind\"", "\"kind\":\"ImageReview\",\"kind\"", 1),
        // Wrong types.
        review(r#"{"containers":{}}"#),
        review(r#"{"containers":["a"]}"#),
        review(r#"{"containers":[{"image":true}]}"#),
        review(r#"{"containers":[{"image":["a"]}]}"#),
        review(r#"{"annotations":[]}"#),
        review(r#"{"annotations":{"k":true}}"#),
        review(r#"{"namespace":{}}"#),
        review("null"),
        review("[]"),
        // Wrong or missing apiVersion, kind, spec.
        review("{}").replace("v1alpha1", "v1"),
        review("{}").replace("\"kind\":\"ImageReview\",", ""),
        review("{}").replace("ImageReview", "imagereview"),
        review("{}").replace(
            "\"apiVersion\":\"imagepolicy.k8s.io/v1alpha1\"",
            "\"apiVersion\":null",
        ),
        r#"{"apiVersion":"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview"}"#.to_owned(),
        // Syntax: trailing data, missing commas, bad literals, unclosed.
        format!("{} x", review("{}")),
        format!("{}{{}}", review("{}")),
        review(r#"{"containers":[{"image":"a"} {"image":"b"}]}"#),
        review(r#"{"x":nul}"#),
        review(r#"{"x":truefalse}"#),
        review(r#"{"x":[1,]}"#),
        review(r#"{"x":[,]}"#),
        review(r#"{"x":{"a":"b",}}"#),
        review("{}").trim_end_matches('}').to_owned(),
        review(r#"{"containers":[{"image":"a"#),
        many_images,
        many_annotations,
        deep,
    ];
    for body in &refused {
        assert!(scan(body.as_bytes()).is_none(), "taken: {body}");
    }
    // Just inside the limits: taken.
    let images: String = (0..MAX_IMAGES)
        .map(|i| format!(r#"{{"image":"i{i}"}},"#))
        .collect();
    let body = review(&format!(
        r#"{{"containers":[{}]}}"#,
        images.trim_end_matches(',')
    ));
    assert!(agree(body.as_bytes()));
    let deep = review(&format!(
        r#"{{"x":{}{}}}"#,
        "[".repeat(MAX_DEPTH - 2),
        "]".repeat(MAX_DEPTH - 2)
    ));
    assert!(agree(deep.as_bytes()));
}

/// JSON's whitespace, up to two characters.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,2}"
}

/// A JSON value as text, from a small alphabet that reaches every branch
/// of the scan: the listed keys, nulls, every type, repeated keys.
fn arb_value(depth: u32) -> BoxedStrategy<String> {
    // A number sends the whole body the general way: rarely.
    let leaf = prop_oneof![
        2 => Just("null".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just("false".to_owned()),
        1 => Just("0".to_owned()),
        8 => "[a-zA-Z0-9./:@ \x7f-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        1 => Just(r#""imagepolicy.k8s.io/v1alpha1""#.to_owned()),
        1 => Just(r#""ImageReview""#.to_owned()),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    let key = prop_oneof![
        Just("apiVersion"),
        Just("kind"),
        Just("spec"),
        Just("containers"),
        Just("annotations"),
        Just("namespace"),
        Just("image"),
        Just("name"),
        Just("x"),
        // Near misses of the listed keys.
        Just(""),
        Just("kinds"),
        Just("Kind"),
        Just("imag"),
        Just("images"),
        Just("spec "),
        Just("apiversion"),
    ];
    prop_oneof![
        2 => leaf,
        1 => (proptest::collection::vec(arb_value(depth - 1), 0..4), ws())
            .prop_map(|(items, ws)| format!("[{ws}{}]", items.join(&format!("{ws},")))),
        3 => (proptest::collection::vec((key, arb_value(depth - 1)), 0..5), ws()).prop_map(
            |(members, ws)| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k:?}{ws}:{v}")).collect();
                format!("{{{}}}", members.join(&format!(",{ws}")))
            }
        ),
    ]
    .boxed()
}

/// An ImageReview body with parts drawn from [`arb_value`].
fn arb_review() -> impl Strategy<Value = String> {
    // A container's own keys and their near misses, mostly with strings.
    let member_key = prop_oneof![
        Just("image"),
        Just("name"),
        Just("images"),
        Just("imag"),
        Just("Image"),
        Just("image "),
        Just(""),
        Just("x"),
    ];
    let member_value = prop_oneof![
        6 => "[a-z0-9./:@-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        2 => Just("null".to_owned()),
        1 => arb_value(1),
    ];
    let container = prop_oneof![
        1 => Just("null".to_owned()),
        4 => (proptest::collection::vec((member_key, member_value), 0..4), ws()).prop_map(
            |(members, ws)| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k:?}:{ws}{v}")).collect();
                format!("{{{ws}{}}}", members.join(","))
            }
        ),
        2 => (
            proptest::option::of(arb_value(1)),
            proptest::option::of(arb_value(1))
        )
            .prop_map(|(image, name)| {
                let mut members = Vec::new();
                if let Some(image) = image {
                    members.push(format!(r#""image":{image}"#));
                }
                if let Some(name) = name {
                    members.push(format!(r#""name":{name}"#));
                }
                format!("{{{}}}", members.join(","))
            }),
        1 => arb_value(1),
    ];
    // Up to the limits and past them, now and then.
    let count = prop_oneof![8 => 0..5usize, 1 => (MAX_IMAGES - 1)..(MAX_IMAGES + 2)];
    let containers = count
        .prop_flat_map(move |n| proptest::collection::vec(container.clone(), n))
        .prop_map(|c| format!("[{}]", c.join(",")));
    let pairs = prop_oneof![8 => 0..4usize, 1 => (MAX_ANNOTATIONS - 1)..(MAX_ANNOTATIONS + 2)];
    let annotation_key = prop_oneof!["[a-c]{1,2}", "[a-z]{1,4}[0-9]{0,2}"];
    let annotations = pairs
        .prop_flat_map(move |n| {
            proptest::collection::vec((annotation_key.clone(), arb_value(0)), n)
        })
        .prop_map(|pairs| {
            let members: Vec<String> = pairs.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
            format!("{{{}}}", members.join(","))
        });
    // The listed keys, and near misses of them with the same values.
    let containers_key = prop_oneof![
        6 => Just("containers"),
        1 => Just("Containers"),
        1 => Just("container"),
        1 => Just("containers "),
    ];
    let annotations_key = prop_oneof![6 => Just("annotations"), 1 => Just("annotation")];
    let namespace_key = prop_oneof![6 => Just("namespace"), 1 => Just("Namespace")];
    let spec_member = prop_oneof![
        (containers_key, containers).prop_map(|(k, v)| format!("{k:?}:{v}")),
        (annotations_key, annotations).prop_map(|(k, v)| format!("{k:?}:{v}")),
        (namespace_key, arb_value(0)).prop_map(|(k, v)| format!("{k:?}:{v}")),
        arb_value(2).prop_map(|v| format!(r#""other":{v}"#)),
    ];
    let spec = prop_oneof![
        4 => proptest::collection::vec(spec_member, 0..5)
            .prop_map(|m| format!("{{{}}}", m.join(","))),
        1 => arb_value(2),
    ];
    (spec, any::<bool>(), " {0,2}").prop_map(|(spec, metadata, ws)| {
        let metadata = if metadata { r#","metadata":{"creationTimestamp":null}"# } else { "" };
        format!(
            r#"{ws}{{"apiVersion":{ws}"imagepolicy.k8s.io/v1alpha1","kind":"ImageReview"{metadata},"spec":{spec}}}{ws}"#
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the fast way takes, the general way reads the same.
    #[test]
    fn the_fast_way_agrees_with_the_general_way(body in arb_review()) {
        agree(body.as_bytes());
    }

    /// The same for bodies bent by one byte (inserted, removed or
    /// replaced), which reach the syntax errors.
    #[test]
    fn bent_bodies_agree_too(
        body in arb_review(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(BENDING_BYTES),
        how in 0..3u8,
    ) {
        agree(&bent(body, at, byte, how));
    }

    /// Arbitrary JSON values as whole bodies.
    #[test]
    fn arbitrary_values_agree(body in arb_value(3)) {
        agree(body.as_bytes());
    }
}

/// The generators reach the fast way often enough to mean something.
#[test]
fn the_generated_bodies_are_often_taken() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = arb_review();
    let taken = (0..500)
        .filter(|_| agree(strategy.new_tree(&mut runner).unwrap().current().as_bytes()))
        .count();
    assert!(taken > 50, "only {taken} of 500 taken");
}

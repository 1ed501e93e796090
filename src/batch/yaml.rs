//! Kubernetes manifests as a stream of objects: YAML multi-document streams
//! (JSON is YAML too) read one document at a time, `kind: List` expanded,
//! each object turned into the JSON bytes the review decoder reads, with the
//! line of each object and of each `image:`/`reference:` value.
//!
//! YAML is read with the limits of a hostile input (nesting, aliases). A
//! key written twice in one mapping keeps its last value, as the apiserver's
//! JSON decoder does with the object it stores: what is judged is what runs.

use std::fmt;
use std::io::Read;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Deepest nesting accepted in a manifest (as in a review body).
const MAX_DEPTH: usize = crate::review::MAX_DEPTH;

/// One object of a manifest stream, as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The JSON text of the object.
    pub json: Vec<u8>,
    /// The line (1-based) where the object starts.
    pub line: u64,
    /// Every string under an `image` or `reference` key, with its line, in
    /// document order (where extracted images are found again).
    pub images: Vec<(String, u64)>,
}

impl Document {
    /// The line of `image` as the `nth` occurrence (0-based) of that string
    /// among the object's image values, when it can be known.
    pub fn line_of(&self, image: &str, nth: usize) -> Option<u64> {
        self.images
            .iter()
            .filter(|(value, _)| value == image)
            .nth(nth)
            .map(|(_, line)| *line)
    }
}

/// A manifest stream that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where (1-based; 0 when unknown).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Reads every document of a YAML (or JSON) stream and hands each object to
/// `each`, one at a time (a `List`'s items one by one). Stops at the first
/// error: a stream that cannot be parsed is not judged halfway. Empty
/// documents are skipped; a document that is not a mapping is an error.
pub fn documents(
    reader: &mut impl Read,
    mut each: impl FnMut(Document) -> Result<(), YamlError>,
) -> Result<(), YamlError> {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 1_000_000;
    let budget = serde_saphyr::budget! {
        max_depth: MAX_DEPTH,
        max_nodes: usize::MAX / 2,
        max_events: usize::MAX / 2,
        max_aliases: 10_000,
        max_anchors: 10_000,
        max_documents: usize::MAX / 2,
        max_total_scalar_bytes: usize::MAX / 2,
        max_reader_input_bytes: None,
    };
    let options = serde_saphyr::options! {
        budget: budget,
        alias_limits: alias_limits,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        with_snippet: false,
    };
    for document in serde_saphyr::read_with_options::<_, Spanned<Node>>(reader, options) {
        let document = document.map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            let rendered = e.render_with_formatter(&serde_saphyr::UserMessageFormatter);
            let message = match e.location() {
                Some(l) => {
                    let suffix = format!(" at line {}, column {}", l.line(), l.column());
                    rendered
                        .strip_suffix(&suffix)
                        .unwrap_or(&rendered)
                        .to_owned()
                }
                None => rendered,
            };
            YamlError { line, message }
        })?;
        let line = document.referenced.line();
        match document.value {
            Node::Null => {}
            Node::Map(entries) => match list_items(&entries) {
                Some(items) => {
                    for item in items {
                        each(object(item, line)?)?;
                    }
                }
                None => each(object(&Node::Map(entries), line)?)?,
            },
            _ => {
                return Err(YamlError {
                    line,
                    message: "a manifest document must be a mapping (an object)".to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// The `items` of a `kind: List` (or any `…List` kind), if this is one.
fn list_items(entries: &[(String, u64, Node)]) -> Option<&[Node]> {
    let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
    match (get("kind"), get("items")) {
        (Some(Node::Str(kind)), Some(Node::Seq(items))) if kind.ends_with("List") => Some(items),
        _ => None,
    }
}

fn object(node: &Node, fallback_line: u64) -> Result<Document, YamlError> {
    let Node::Map(entries) = node else {
        return Err(YamlError {
            line: fallback_line,
            message: "a list item must be a mapping (an object)".to_owned(),
        });
    };
    let line = entries.first().map_or(fallback_line, |(_, line, _)| *line);
    let mut out = Document {
        json: Vec::with_capacity(1024),
        line,
        images: Vec::new(),
    };
    write(node, &mut out);
    Ok(out)
}

fn write(node: &Node, out: &mut Document) {
    match node {
        Node::Null => out.json.extend_from_slice(b"null"),
        Node::Bool(b) => out
            .json
            .extend_from_slice(if *b { b"true" } else { b"false" }),
        Node::Int(i) => out.json.extend_from_slice(i.to_string().as_bytes()),
        Node::Uint(u) => out.json.extend_from_slice(u.to_string().as_bytes()),
        Node::Float(f) if f.is_finite() => {
            out.json.extend_from_slice(
                serde_json::Number::from_f64(*f)
                    .map_or_else(|| "null".to_owned(), |n| n.to_string())
                    .as_bytes(),
            );
        }
        Node::Float(_) => out.json.extend_from_slice(b"null"),
        Node::Str(s) => string(s, &mut out.json),
        Node::Seq(items) => {
            out.json.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.json.push(b',');
                }
                write(item, out);
            }
            out.json.push(b']');
        }
        Node::Map(entries) => {
            out.json.push(b'{');
            for (i, (key, line, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.json.push(b',');
                }
                string(key, &mut out.json);
                out.json.push(b':');
                if let (Node::Str(s), "image" | "reference") = (value, key.as_str()) {
                    out.images.push((s.clone(), *line));
                }
                write(value, out);
            }
            out.json.push(b'}');
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    // Serializing a str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A YAML node, kept only as long as one document is converted.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order, with the line of the first one's value
    /// and of `image` and `reference` values (0 for the others).
    Map(Vec<(String, u64, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Uint(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        // Lines are kept where they are used: the first entry's (where an
        // object starts) and image values'; locating every value would
        // double the cost of reading a manifest.
        let mut entries = Vec::new();
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if entries.is_empty() || key == "image" || key == "reference" {
                let value = map.next_value::<Spanned<Node>>()?;
                entries.push((key, value.referenced.line(), value.value));
            } else {
                entries.push((key, 0, map.next_value::<Node>()?));
            }
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key: any scalar, as its text (JSON keys are strings).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
                Ok(Key(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
                Ok(Key("null".to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(docs[0].line_of("nginx:1", 0), Some(8));
        let v: serde_json::Value = serde_json::from_slice(&docs[0].json).unwrap();
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1");
        assert_eq!(docs[1].line, 13);
        assert_eq!(docs[1].line_of("x", 0), Some(14));
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
}

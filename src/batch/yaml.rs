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
    /// Where each image is written: the list it is in (`containers`,
    /// `initContainers`, `ephemeralContainers`, `volumes`), its index there,
    /// and the line of its `image:` (`image.reference:` for a volume).
    pub images: Vec<ImageAt>,
}

/// Where one image is written in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAt {
    /// `containers`, `initContainers`, `ephemeralContainers` or `volumes`.
    pub list: &'static str,
    /// The index in that list.
    pub index: usize,
    /// For a volume, its name (volumes without an image are in the list
    /// too, so the index of an image volume among image volumes differs).
    pub name: Option<String>,
    /// The line of `image:`, or of `image.reference:` for a volume.
    pub line: u64,
}

impl Document {
    /// The line of the image at `index` of the container list `list`.
    pub fn container_line(&self, list: &str, index: usize) -> Option<u64> {
        self.images
            .iter()
            .find(|at| at.list == list && at.index == index)
            .map(|at| at.line)
    }

    /// The line of the image of the volume named `name`.
    pub fn volume_line(&self, name: &str) -> Option<u64> {
        self.images
            .iter()
            .find(|at| at.list == "volumes" && at.name.as_deref() == Some(name))
            .map(|at| at.line)
    }
}

/// Most bytes one document may expand to (its strings and nodes, counted
/// as they are built), aliases included: a small file of aliases to a
/// large anchor is refused instead of filling the memory.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Rough cost of a node beside its text, for [`MAX_DOCUMENT_BYTES`].
const NODE_BYTES: usize = 48;

thread_local! {
    /// Bytes left for the document being read (see [`MAX_DOCUMENT_BYTES`]).
    static LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_DOCUMENT_BYTES) };
}

/// Charges `bytes` to the document being read.
fn charge<E: de::Error>(bytes: usize) -> Result<(), E> {
    LEFT.with(|left| match left.get().checked_sub(bytes) {
        Some(rest) => {
            left.set(rest);
            Ok(())
        }
        None => Err(E::custom(format_args!(
            "the document expands to more than {} MiB (aliases included)",
            MAX_DOCUMENT_BYTES >> 20
        ))),
    })
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
    let mut documents = serde_saphyr::read_with_options::<_, Spanned<Node>>(reader, options);
    loop {
        LEFT.with(|left| left.set(MAX_DOCUMENT_BYTES));
        let Some(document) = documents.next() else {
            break;
        };
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
            node @ Node::Map(_) => objects(&node, line, 0, &mut each)?,
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

/// Deepest `List` inside a `List` expanded.
const MAX_LIST_NESTING: usize = 8;

/// Hands `node` to `each` as one object, or each item of a `List` (any
/// `…List` kind with `items`), recursively.
fn objects(
    node: &Node,
    fallback_line: u64,
    nesting: usize,
    each: &mut impl FnMut(Document) -> Result<(), YamlError>,
) -> Result<(), YamlError> {
    let Node::Map(entries) = node else {
        return Err(YamlError {
            line: fallback_line,
            message: "a list item must be a mapping (an object)".to_owned(),
        });
    };
    let line = entries.first().map_or(fallback_line, |(_, line, _)| *line);
    if let Some(items) = list_items(entries) {
        if nesting >= MAX_LIST_NESTING {
            return Err(YamlError {
                line,
                message: format!("Lists nest deeper than {MAX_LIST_NESTING} levels"),
            });
        }
        for item in items {
            objects(item, line, nesting + 1, each)?;
        }
        return Ok(());
    }
    let mut out = Document {
        json: Vec::with_capacity(1024),
        line,
        images: Vec::new(),
    };
    write(node, &mut out, None);
    each(out)
}

/// The `items` of a `kind: List` (or any `…List` kind), if this is one.
fn list_items(entries: &[(String, u64, Node)]) -> Option<&[Node]> {
    let get = |key: &str| entries.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v);
    match (get("kind"), get("items")) {
        (Some(Node::Str(kind)), Some(Node::Seq(items))) if kind.ends_with("List") => Some(items),
        _ => None,
    }
}

/// The pod spec lists whose items hold images.
fn image_list(key: &str) -> Option<&'static str> {
    match key {
        "containers" => Some("containers"),
        "initContainers" => Some("initContainers"),
        "ephemeralContainers" => Some("ephemeralContainers"),
        "volumes" => Some("volumes"),
        _ => None,
    }
}

/// The line of an item's image: `image:` of a container, `image:
/// reference:` of a volume.
fn image_line(list: &str, item: &Node) -> Option<u64> {
    let Node::Map(entries) = item else {
        return None;
    };
    let (_, line, value) = entries.iter().find(|(k, _, _)| k == "image")?;
    if list != "volumes" {
        return Some(*line);
    }
    let Node::Map(image) = value else {
        return None;
    };
    image
        .iter()
        .find(|(k, _, _)| k == "reference")
        .map(|(_, line, _)| *line)
}

/// The `name` of a list item (`""` when it has none).
fn name_of(item: &Node) -> String {
    match item {
        Node::Map(entries) => entries
            .iter()
            .find_map(|(k, _, v)| match v {
                Node::Str(name) if k == "name" => Some(name.clone()),
                _ => None,
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Writes `node` as JSON; `list` is the pod spec list `node` is, when it is
/// the value of such a key.
fn write(node: &Node, out: &mut Document, list: Option<&'static str>) {
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
                if let Some(list) = list
                    && let Some(line) = image_line(list, item)
                {
                    out.images.push(ImageAt {
                        list,
                        index: i,
                        name: (list == "volumes").then(|| name_of(item)),
                        line,
                    });
                }
                write(item, out, None);
            }
            out.json.push(b']');
        }
        Node::Map(entries) => {
            out.json.push(b'{');
            for (i, (key, _, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.json.push(b',');
                }
                string(key, &mut out.json);
                out.json.push(b':');
                write(value, out, image_list(key));
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
    /// Entries in document order, with the line of the first key and of
    /// `image` and `reference` values (0 for the others).
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
        charge(v.len())?;
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        charge(v.len())?;
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        charge(v.len())?;
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            charge(NODE_BYTES)?;
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        // Lines are kept where they are used: the first key's (where an
        // object starts) and image values'; locating every value would
        // double the cost of reading a manifest. A key written twice keeps
        // its last value, as the apiserver's JSON decoder does.
        let mut entries: Vec<(String, u64, Node)> = Vec::new();
        let mut index: Option<std::collections::HashMap<String, usize>> = None;
        loop {
            let (key, key_line) = if entries.is_empty() {
                match map.next_key::<Spanned<Key>>()? {
                    Some(k) => (k.value.0, k.referenced.line()),
                    None => break,
                }
            } else {
                match map.next_key::<Key>()? {
                    Some(k) => (k.0, 0),
                    None => break,
                }
            };
            charge(NODE_BYTES + key.len())?;
            let (line, value) = if key == "image" || key == "reference" {
                let value = map.next_value::<Spanned<Node>>()?;
                (value.referenced.line(), value.value)
            } else {
                (key_line, map.next_value::<Node>()?)
            };
            let found = match &index {
                Some(index) => index.get(&key).copied(),
                None => entries.iter().position(|(k, _, _)| *k == key),
            };
            match found {
                Some(at) => entries[at] = (key, line, value),
                None => {
                    if let Some(index) = &mut index {
                        index.insert(key.clone(), entries.len());
                    } else if entries.len() >= 16 {
                        let mut built: std::collections::HashMap<String, usize> = entries
                            .iter()
                            .enumerate()
                            .map(|(i, (k, _, _))| (k.clone(), i))
                            .collect();
                        built.insert(key.clone(), entries.len());
                        index = Some(built);
                    }
                    entries.push((key, line, value));
                }
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
        assert_eq!(docs[0].container_line("containers", 0), Some(8));
        let v: serde_json::Value = serde_json::from_slice(&docs[0].json).unwrap();
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1");
        assert_eq!(docs[1].line, 13);
        // A flow mapping: the whole item is on one line.
        assert_eq!(docs[1].container_line("containers", 0), Some(14));
    }

    #[test]
    fn lines_follow_lists_and_names() {
        let docs = all(
            "kind: Pod\nmetadata:\n  name: p\nspec:\n  initContainers:\n  - name: migrate\n    image: app:1\n  containers:\n  - name: main\n    image: app:1\n  volumes:\n  - name: cfg\n    configMap: {name: c}\n  - name: model\n    image:\n      reference: m:1\n",
        )
        .unwrap();
        let d = &docs[0];
        assert_eq!(d.line, 1);
        assert_eq!(d.container_line("initContainers", 0), Some(7));
        assert_eq!(d.container_line("containers", 0), Some(10));
        assert_eq!(d.volume_line("model"), Some(16));
        assert_eq!(d.volume_line("cfg"), None);
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
}

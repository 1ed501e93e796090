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

use serde_saphyr::Spanned;

mod node;

pub use node::MAX_DOCUMENT_BYTES;
use node::{LEFT, Node};

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

/// Among `images`, the line of the image at `index` of the container list
/// `list`.
pub fn container_line(images: &[ImageAt], list: &str, index: usize) -> Option<u64> {
    images
        .iter()
        .find(|at| at.list == list && at.index == index)
        .map(|at| at.line)
}

/// Among `images`, the line of the image of the volume named `name`.
pub fn volume_line(images: &[ImageAt], name: &str) -> Option<u64> {
    images
        .iter()
        .find(|at| at.list == "volumes" && at.name.as_deref() == Some(name))
        .map(|at| at.line)
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

#[cfg(test)]
mod tests;

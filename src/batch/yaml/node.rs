//! The YAML tree one document is read into, kept only while it is turned
//! into JSON: every scalar as JSON can hold it, lines where they are used,
//! a repeated key's last value, and a budget on the bytes one document may
//! expand to.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Most bytes one document may expand to (its strings and nodes, counted
/// as they are built), aliases included: a small file of aliases to a
/// large anchor is refused instead of filling the memory.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// Rough cost of a node beside its text, for [`MAX_DOCUMENT_BYTES`].
const NODE_BYTES: usize = 48;

thread_local! {
    /// Bytes left for the document being read (see [`MAX_DOCUMENT_BYTES`]).
    pub(super) static LEFT: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_DOCUMENT_BYTES) };
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

/// A YAML node, kept only as long as one document is converted.
#[derive(Debug)]
pub(super) enum Node {
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

//! Zero-copy decoding primitives shared by both review kinds.
//!
//! A body is parsed once, in place, by simd-json (strings are unescaped into
//! the body itself, so every string below borrows from it), with a nesting
//! limit enforced while the tape is built. The narrow types here then pick
//! fields out of the tape through serde; everything else is skipped with
//! [`IgnoredAny`]. Objects decode only from JSON objects (not from arrays, as
//! serde's derive would allow), a key named twice is an error, and `null`
//! reads as absent, as Go's decoder does.
//!
//! This module knows nothing of reviews: it must not decide anything.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::{Deref, DerefMut};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use simd_json::{Buffers, ErrorType, Node, Tape};

use super::error::{DecodeError, DecodeErrorKind};

/// Deepest nesting of objects and arrays accepted in a body. A Pod inside an
/// AdmissionReview, managed fields included, stays well under 40.
pub const MAX_DEPTH: usize = 128;

/// Bodies up to this size reuse the thread's parse buffers (a Pod
/// AdmissionReview with its old object and managed fields is some 10–40
/// KiB); larger ones get fresh buffers that are freed afterwards, so a
/// thread keeps a few hundred KiB at most.
const REUSE_LIMIT: usize = 64 * 1024;

/// A tape up to this size (in bytes) is kept for the thread's next parse;
/// a larger one (a body of tens of KiB) is freed with its parse.
const TAPE_KEEP: usize = 128 * 1024;

/// The first words of the message of a repeated key (see [`classify`]).
const DUPLICATE: &str = "duplicate key";

thread_local! {
    static BUFFERS: RefCell<Buffers> =
        RefCell::new(Buffers::with_max_depth(16 * 1024, MAX_DEPTH));
    /// The tape of the thread's last parse, empty, for its next one.
    static TAPE: Cell<Vec<Node<'static>>> = const { Cell::new(Vec::new()) };
    /// Where in the document the current decode error happened, innermost
    /// first. serde's errors are plain strings in simd-json, so the path is
    /// collected beside them; only error paths touch it.
    static TRAIL: RefCell<Vec<Segment>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug, Clone, Copy)]
enum Segment {
    Key(&'static str),
    Index(usize),
}

/// simd-json's tape of a body, walked by [`decode`]; its allocation goes
/// back to the thread when it is dropped.
pub(super) struct Parsed<'de> {
    de: simd_json::Deserializer<'de>,
}

impl<'de> Deref for Parsed<'de> {
    type Target = simd_json::Deserializer<'de>;

    fn deref(&self) -> &Self::Target {
        &self.de
    }
}

impl DerefMut for Parsed<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.de
    }
}

impl Drop for Parsed<'_> {
    fn drop(&mut self) {
        let de = std::mem::replace(
            &mut self.de,
            simd_json::Deserializer::from_tape(Tape(Vec::new())),
        );
        keep(de.into_tape());
    }
}

/// Gives a tape's allocation back to the thread, unless it is large.
fn keep(tape: Tape<'_>) {
    let tape: Tape<'static> = tape.reset();
    if tape.0.capacity() * size_of::<Node<'static>>() <= TAPE_KEEP {
        // During the thread's exit there is nowhere to keep it.
        let _ = TAPE.try_with(|kept| kept.set(tape.0));
    }
}

/// The capacity, in nodes, of the tape the thread keeps.
#[cfg(test)]
pub(super) fn kept_tape_capacity() -> usize {
    TAPE.with(|kept| {
        let tape = kept.take();
        let capacity = tape.capacity();
        kept.set(tape);
        capacity
    })
}

/// Builds simd-json's tape for `body` (parsing it in place).
pub(super) fn tape(body: &mut [u8]) -> Result<Parsed<'_>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::new(
            DecodeErrorKind::NotJson,
            "request body is empty",
        ));
    }
    TRAIL.with_borrow_mut(Vec::clear);
    let mut tape = Tape(TAPE.try_with(Cell::take).unwrap_or_default()).reset();
    let parsed = if body.len() <= REUSE_LIMIT {
        BUFFERS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => simd_json::fill_tape(body, &mut buffers, &mut tape),
            // Not reachable (decoding never re-enters), but never panic for it.
            Err(_) => fresh(body, &mut tape),
        })
    } else {
        fresh(body, &mut tape)
    };
    if let Err(err) = parsed {
        keep(tape);
        return Err(syntax_error(&err));
    }
    Ok(Parsed {
        de: simd_json::Deserializer::from_tape(tape),
    })
}

fn fresh<'de>(body: &'de mut [u8], tape: &mut Tape<'de>) -> simd_json::Result<()> {
    let mut buffers = Buffers::with_max_depth(body.len(), MAX_DEPTH);
    simd_json::fill_tape(body, &mut buffers, tape)
}

/// Decodes one value from the tape, classifying any failure.
pub(super) fn decode<'de, T: Deserialize<'de>>(
    de: &mut simd_json::Deserializer<'de>,
) -> Result<T, DecodeError> {
    T::deserialize(de).map_err(|err| classify(&err))
}

/// Decodes one value from the tape with a seed, classifying any failure.
pub(super) fn decode_seed<'de, S: de::DeserializeSeed<'de>>(
    de: &mut simd_json::Deserializer<'de>,
    seed: S,
) -> Result<S::Value, DecodeError> {
    seed.deserialize(de).map_err(|err| classify(&err))
}

fn syntax_error(err: &simd_json::Error) -> DecodeError {
    let what = match err.error() {
        ErrorType::DepthLimitExceeded => {
            return DecodeError::new(
                DecodeErrorKind::TooDeep,
                format_args!("request body nests deeper than {MAX_DEPTH} levels"),
            );
        }
        ErrorType::InputTooLarge => "too large",
        ErrorType::InvalidUtf8 => "invalid UTF-8",
        ErrorType::Eof => "unexpected end of input",
        ErrorType::TrailingData => "trailing characters after the document",
        ErrorType::UnterminatedString => "unterminated string",
        ErrorType::InvalidEscape => "invalid escape sequence",
        ErrorType::InvalidUnicodeEscape | ErrorType::InvalidUnicodeCodepoint => {
            "invalid unicode escape"
        }
        ErrorType::InvalidNumber | ErrorType::InvalidExponent => "invalid number",
        ErrorType::KeyMustBeAString | ErrorType::BadKeyType => "object key is not a string",
        _ => "syntax error",
    };
    DecodeError::new(
        DecodeErrorKind::NotJson,
        format_args!(
            "request body is not valid JSON: {what} near byte {}",
            err.index()
        ),
    )
}

/// Turns an error raised while walking the tape into a [`DecodeError`]
/// naming the field's path.
fn classify(err: &simd_json::Error) -> DecodeError {
    let path = TRAIL.with_borrow_mut(|trail| {
        let mut path = String::new();
        for segment in trail.drain(..).rev() {
            match segment {
                Segment::Key(key) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Index(i) => {
                    use fmt::Write as _;
                    let _ = write!(path, "[{i}]");
                }
            }
        }
        path
    });
    let leaf = match err.error() {
        ErrorType::Serde(text) => text.clone(),
        other => format!("{other:?}"),
    };
    let kind = if leaf.starts_with(DUPLICATE) {
        DecodeErrorKind::DuplicateField
    } else {
        DecodeErrorKind::WrongType
    };
    if path.is_empty() {
        DecodeError::new(kind, format_args!("request body: {leaf}"))
    } else {
        DecodeError::new(kind, format_args!("field {path}: {leaf}"))
    }
}

fn push(segment: Segment) {
    TRAIL.with_borrow_mut(|trail| {
        if trail.len() < MAX_DEPTH {
            trail.push(segment);
        }
    });
}

/// `map_err` adapter recording that the error happened under `key`.
pub(super) fn at_key<E>(key: &'static str) -> impl FnOnce(E) -> E {
    move |err| {
        push(Segment::Key(key));
        err
    }
}

/// Marks `seen`, failing if the key was already there.
pub(super) fn first<E: de::Error>(seen: &mut bool, key: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        Err(E::custom(format_args!("{DUPLICATE} {key:?}")))
    } else {
        Ok(())
    }
}

/// Skips one value of any shape.
pub(super) fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(|_| ())
}

/// A borrowed JSON string (object keys included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Str<'a>(pub(super) &'a str);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'de>, E> {
                Ok(Str(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON array; `null` elements are left to `T` (see [`Option`]).
#[derive(Debug)]
pub(super) struct List<T>(pub(super) Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List<T>, A::Error> {
                // The hint is the element count of a parsed array, but keep a
                // hostile count from reserving much up front.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                loop {
                    let index = out.len();
                    match seq.next_element::<T>() {
                        Ok(Some(item)) => out.push(item),
                        Ok(None) => return Ok(List(out)),
                        Err(err) => {
                            push(Segment::Index(index));
                            return Err(err);
                        }
                    }
                }
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A `map[string]string` such as `metadata.annotations`, in document order;
/// a `null` value reads as `""` (Go's behaviour), a repeated key is an error.
#[derive(Debug, Default)]
pub(super) struct Annotations<'a>(pub(super) Vec<(&'a str, &'a str)>);

impl<'de> Deserialize<'de> for Annotations<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Annotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    let value = map.next_value::<Option<Str<'de>>>()?;
                    out.push((key, value.map_or("", |v| v.0)));
                }
                // Reject repeated keys: the apiserver never sends them, and a
                // policy reading the first of two would disagree with
                // Kubernetes reading the last.
                match repeated(&out) {
                    Some(key) => Err(de::Error::custom(format_args!(
                        "{DUPLICATE} {:?}",
                        super::error::Echo(key)
                    ))),
                    None => Ok(Annotations(out)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A key present twice in `pairs`: pairwise for the usual handful of
/// annotations, by sorting a copy of the keys for more.
fn repeated<'a>(pairs: &[(&'a str, &str)]) -> Option<&'a str> {
    if pairs.len() <= 16 {
        return pairs
            .iter()
            .enumerate()
            .find(|(i, (key, _))| pairs[..*i].iter().any(|(k, _)| k == key))
            .map(|(_, (key, _))| *key);
    }
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    keys.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// Declares a struct of optional fields decoded from a JSON object: listed
/// keys are read (`null` = absent), a repeated listed key is an error, other
/// keys are skipped without building anything.
macro_rules! wire_object {
    (
        $(#[$meta:meta])*
        struct $name:ident<$lt:lifetime> {
            $( $(#[$fmeta:meta])* $field:ident : $ty:ty = $key:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        pub(super) struct $name<$lt> {
            $( $(#[$fmeta])* pub(super) $field: Option<$ty>, )*
        }

        impl<$lt> serde::Deserialize<$lt> for $name<$lt> {
            fn deserialize<D: serde::Deserializer<$lt>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<$lt> serde::de::Visitor<$lt> for V {
                    type Value = $name<$lt>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object")
                    }
                    fn visit_map<A: serde::de::MapAccess<$lt>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut out = $name::default();
                        $( let mut $field = false; )*
                        while let Some(key) = map.next_key::<$crate::review::wire::Str<$lt>>()? {
                            match key.0 {
                                $( $key => {
                                    $crate::review::wire::first::<A::Error>(&mut $field, $key)?;
                                    out.$field = map
                                        .next_value()
                                        .map_err($crate::review::wire::at_key($key))?;
                                } )*
                                _ => $crate::review::wire::skip(&mut map)?,
                            }
                        }
                        Ok(out)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}
pub(super) use wire_object;

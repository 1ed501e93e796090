//! A short way through plain ImageReview bodies not in the apiserver's
//! exact form (which [`super::canonical`] reads): pretty-printed or
//! reordered ones, other clients'.
//!
//! The plugin's bodies are small and plain: ASCII, no escapes, no numbers,
//! a handful of containers and annotations. For those, one pass over the
//! bytes finds where the fields lie, without simd-json's tape and serde's
//! walk. Anything else (non-ASCII, a backslash, a number, a control
//! character, a field of an unexpected type or named twice, a wrong
//! `apiVersion` or `kind`, more than [`MAX_IMAGES`] images or
//! [`MAX_ANNOTATIONS`] annotations, deep nesting, any syntax error) ends
//! the pass with `None`, and the body goes the general way, which decides
//! it, and words its error, as before.
//!
//! What this pass accepts is a subset of what the general way accepts, and
//! it reads the same fields with the same meaning: `null` is absent, a
//! `null` container is an empty image, a `null` annotation value is `""`,
//! unknown keys are skipped (their values still checked as JSON). A
//! proptest holds the two ways to the same result on generated and bent
//! bodies.

use smallvec::SmallVec;

use super::{API_VERSION, KIND};

/// Most images read here; a longer list goes the general way.
pub(super) const MAX_IMAGES: usize = 32;
/// Most annotations read here (the plugin sends only the
/// `*.image-policy.k8s.io/*` ones).
pub(super) const MAX_ANNOTATIONS: usize = 16;
/// Deepest nesting read here (the general way allows more).
const MAX_DEPTH: usize = 32;
/// Largest body read here: the plugin's are a few hundred bytes, and a
/// large body refused near its end would be read twice.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// Where a string's contents lie in the body (without the quotes).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// `start..end`; `None` past what a `u32` holds.
    pub(super) fn new(start: usize, end: usize) -> Option<Span> {
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    fn of(self, text: &str) -> &str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    fn bytes(self, body: &[u8]) -> &[u8] {
        body.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// Where the parts a decision needs lie in an ImageReview body (inline up
/// to the lists a pod usually has, as in [`Parts`](super::Parts)).
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) namespace: Span,
    /// `(image, name)` of each container, in order.
    pub(super) images: SmallVec<[(Span, Span); 8]>,
    /// `(key, value)` of each annotation, in order.
    pub(super) annotations: SmallVec<[(Span, Span); 4]>,
}

impl Found {
    /// The parts, read from `text`: the body that was scanned.
    pub(super) fn parts<'a>(&self, text: &'a str) -> super::Parts<'a> {
        super::Parts {
            namespace: self.namespace.of(text),
            annotations: self
                .annotations
                .iter()
                .map(|(k, v)| (k.of(text), v.of(text)))
                .collect(),
            images: self
                .images
                .iter()
                .map(|(image, name)| super::ImageOf {
                    image: image.of(text),
                    name: name.of(text),
                })
                .collect(),
        }
    }
}

/// Scans `body`; `None` when it must go the general way.
pub(super) fn scan(body: &[u8]) -> Option<Found> {
    // Past this, every offset fits the `u32`s of a `Span`.
    if body.len() > MAX_BODY || !body.is_ascii() {
        return None;
    }
    let mut found = Found::default();
    let mut s = Scan { b: body, i: 0 };
    let (mut api_version, mut kind, mut spec) = (false, false, false);
    s.object(|s, key| match s.bytes(key) {
        b"apiVersion" => {
            first(&mut api_version)?;
            let v = s.string()?;
            (s.bytes(v) == API_VERSION.as_bytes()).then_some(())
        }
        b"kind" => {
            first(&mut kind)?;
            let v = s.string()?;
            (s.bytes(v) == KIND.as_bytes()).then_some(())
        }
        b"spec" => {
            first(&mut spec)?;
            s.spec(&mut found)
        }
        _ => s.skip(1),
    })?;
    s.ws();
    (api_version && kind && spec && s.i == body.len()).then_some(found)
}

/// Whether two of `pairs` have the same key (an error the general way
/// words). Pairwise: both short readings hold at most [`MAX_ANNOTATIONS`]
/// pairs.
pub(super) fn repeated_key(body: &[u8], pairs: &[(Span, Span)]) -> bool {
    pairs.iter().enumerate().any(|(i, (k, _))| {
        pairs[..i]
            .iter()
            .any(|(seen, _)| seen.bytes(body) == k.bytes(body))
    })
}

/// Marks a listed key seen; `None` the second time.
fn first(seen: &mut bool) -> Option<()> {
    (!std::mem::replace(seen, true)).then_some(())
}

struct Scan<'b> {
    b: &'b [u8],
    i: usize,
}

impl Scan<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn bytes(&self, span: Span) -> &[u8] {
        span.bytes(self.b)
    }

    /// A string without escapes or control characters.
    fn string(&mut self) -> Option<Span> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = self.b.get(start..)?;
        let len = memchr::memchr(b'"', rest)?;
        // Without an early exit, so that the bytes are checked many at once.
        let refused = rest[..len]
            .iter()
            .fold(false, |refused, &c| refused | (c == b'\\') | (c < 0x20));
        if refused {
            return None;
        }
        self.i = start + len;
        let span = Span::new(start, self.i)?;
        self.i += 1;
        Some(span)
    }

    /// A string, or `null` (read as `""`).
    fn string_or_null(&mut self) -> Option<Span> {
        if self.null() {
            Some(Span::default())
        } else {
            self.string()
        }
    }

    /// Takes `null` if it is next.
    fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// An object, each key handed to `member` with the scan before its
    /// value, which `member` must take.
    fn object(&mut self, mut member: impl FnMut(&mut Self, Span) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array, each element handed to `element`, which must take it.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Any value but a number, checked and left unread; `depth` is its
    /// nesting (a member of the body's object is at 1).
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let literal: &[u8] = match self.peek()? {
            b'"' => return self.string().map(drop),
            b'{' => return self.object(|s, _| s.skip(depth + 1)),
            b'[' => return self.array(|s| s.skip(depth + 1)),
            b't' => b"true",
            b'f' => b"false",
            b'n' => b"null",
            _ => return None,
        };
        self.b[self.i..]
            .starts_with(literal)
            .then(|| self.i += literal.len())
    }

    /// `spec`: its containers, annotations and namespace.
    fn spec(&mut self, found: &mut Found) -> Option<()> {
        let (mut containers, mut annotations, mut namespace) = (false, false, false);
        self.object(|s, key| match s.bytes(key) {
            b"containers" => {
                first(&mut containers)?;
                if s.null() {
                    return Some(());
                }
                s.array(|s| {
                    if found.images.len() == MAX_IMAGES {
                        return None;
                    }
                    found.images.push(s.container()?);
                    Some(())
                })
            }
            b"annotations" => {
                first(&mut annotations)?;
                if s.null() {
                    return Some(());
                }
                s.object(|s, key| {
                    let value = s.string_or_null()?;
                    if found.annotations.len() == MAX_ANNOTATIONS {
                        return None;
                    }
                    found.annotations.push((key, value));
                    Some(())
                })?;
                // A repeated key is an error the general way words.
                (!repeated_key(s.b, &found.annotations)).then_some(())
            }
            b"namespace" => {
                first(&mut namespace)?;
                found.namespace = s.string_or_null()?;
                Some(())
            }
            _ => s.skip(2),
        })
    }

    /// One element of `containers`: `(image, name)`, `null` an empty one.
    fn container(&mut self) -> Option<(Span, Span)> {
        let mut out = (Span::default(), Span::default());
        if self.null() {
            return Some(out);
        }
        let (mut image, mut name) = (false, false);
        self.object(|s, key| match s.bytes(key) {
            b"image" => {
                first(&mut image)?;
                out.0 = s.string_or_null()?;
                Some(())
            }
            b"name" => {
                first(&mut name)?;
                out.1 = s.string_or_null()?;
                Some(())
            }
            _ => s.skip(4),
        })?;
        Some(out)
    }
}

#[cfg(test)]
mod tests;

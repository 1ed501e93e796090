//! The exact bytes the apiserver writes for an ImageReview, read by
//! comparing fixed pieces.
//!
//! The ImagePolicyWebhook plugin encodes its `ImageReview` with Go's
//! `encoding/json` (spec/imagereview.md): compact, the fields in struct
//! order (`kind`, `apiVersion`, `metadata`, `spec`, `status`), the empty
//! fields of `spec` and a container's empty `image` left out, map keys
//! sorted, `metadata` as `{"creationTimestamp":null}` or `{}`, `status` the
//! request's zero `{"allowed":false}`, a newline after the object. A body
//! of exactly that form is read here with one check over all its bytes
//! (ASCII, no control character, no backslash: so no string needs its own)
//! and one comparison per fixed piece, where the one-pass scan
//! ([`super::fast`]) decides at every byte what comes next.
//!
//! Any other body (whitespace, another order, an unknown field, a `null`,
//! an escape, a non-ASCII byte, a repeated annotation key, more than
//! [`MAX_ANNOTATIONS`] annotations) is left to the
//! scan, which takes more forms, and then to the general way. What is read
//! here is what the general way reads from the same body: a proptest over
//! the plugin's form and bent copies of it, and the `imagereview` fuzz
//! target, hold the readings to one result.

use super::fast::{Found, MAX_ANNOTATIONS, MAX_BODY, Span, repeated_key};

/// Everything before `metadata`'s contents.
const HEAD: &[u8] =
    br#"{"kind":"ImageReview","apiVersion":"imagepolicy.k8s.io/v1alpha1","metadata":{"#;
/// `metadata`'s contents, when there are any.
const TIMESTAMP: &[u8] = br#""creationTimestamp":null"#;
/// The end of `metadata`, the start of `spec`.
const SPEC: &[u8] = br#"},"spec":{"#;
/// The request's `status`, after `spec`.
const STATUS: &[u8] = br#","status":{"allowed":false}"#;

/// Reads `body` if it has the plugin's exact form; `None` otherwise.
pub(super) fn read(body: &[u8]) -> Option<Found> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    // Past this, every offset fits the `u32`s of a `Span`.
    if body.len() > MAX_BODY || !plain(body) {
        return None;
    }
    let mut r = Reader { b: body, i: 0 };
    r.take(HEAD)?;
    r.skip(TIMESTAMP);
    r.take(SPEC)?;
    let mut found = Found::default();
    // The separator before the next member of `spec`.
    let mut comma: &[u8] = b"";
    if r.member(comma, br#""containers":["#) {
        loop {
            let image = if r.skip(b"{}") {
                Span::default()
            } else {
                r.take(br#"{"image":""#)?;
                let image = r.rest_of_string()?;
                r.take(b"}")?;
                image
            };
            found.images.push((image, Span::default()));
            if !r.skip(b",") {
                break;
            }
        }
        r.take(b"]")?;
        comma = b",";
    }
    if r.member(comma, br#""annotations":{"#) {
        loop {
            r.take(b"\"")?;
            let key = r.rest_of_string()?;
            r.take(b":\"")?;
            let value = r.rest_of_string()?;
            // The repeated-key check below is pairwise: more annotations
            // than the plugin sends go the general way, which sorts.
            if found.annotations.len() == MAX_ANNOTATIONS {
                return None;
            }
            found.annotations.push((key, value));
            if !r.skip(b",") {
                break;
            }
        }
        r.take(b"}")?;
        if repeated_key(body, &found.annotations) {
            return None;
        }
        comma = b",";
    }
    if r.member(comma, br#""namespace":""#) {
        found.namespace = r.rest_of_string()?;
    }
    r.take(b"}")?;
    r.skip(STATUS);
    r.take(b"}")?;
    (r.i == body.len()).then_some(found)
}

/// Whether every byte is printable ASCII or DEL, and none a backslash: no
/// escape, no control character, no multi-byte character anywhere. Without
/// an early exit, so that the bytes are checked many at once.
fn plain(body: &[u8]) -> bool {
    !body.iter().fold(false, |bad, &c| {
        bad | !(0x20..0x80).contains(&c) | (c == b'\\')
    })
}

struct Reader<'b> {
    b: &'b [u8],
    i: usize,
}

impl Reader<'_> {
    /// Takes `piece` if it is next.
    fn skip(&mut self, piece: &[u8]) -> bool {
        let next = self
            .b
            .get(self.i..)
            .is_some_and(|rest| rest.starts_with(piece));
        if next {
            self.i += piece.len();
        }
        next
    }

    /// Takes `piece`, which must be next.
    fn take(&mut self, piece: &[u8]) -> Option<()> {
        self.skip(piece).then_some(())
    }

    /// Takes `comma` and `name` if they are next, together.
    fn member(&mut self, comma: &[u8], name: &[u8]) -> bool {
        let next = self.b.get(self.i..).is_some_and(|rest| {
            rest.starts_with(comma) && rest.get(comma.len()..).is_some_and(|r| r.starts_with(name))
        });
        if next {
            self.i += comma.len() + name.len();
        }
        next
    }

    /// The rest of a string whose opening quote was taken, and its closing
    /// quote. The body is plain, so the contents need no check.
    fn rest_of_string(&mut self) -> Option<Span> {
        let start = self.i;
        let len = memchr::memchr(b'"', self.b.get(start..)?)?;
        self.i = start + len + 1;
        Span::new(start, start + len)
    }
}

#[cfg(test)]
mod tests;

//! A small JSON writer for responses: no intermediate tree, no per-field
//! allocation, and text fields written straight from `Display` values
//! through an escaping, length-capped sink.
//!
//! Every string from a request passes through [`escape_into`], so quotes,
//! backslashes and control characters always come out as valid JSON. Knows
//! nothing of reviews.

use std::fmt;

/// An output buffer holding one JSON document being written.
#[derive(Debug)]
pub(super) struct Json {
    buf: Vec<u8>,
}

impl Json {
    pub(super) fn with_capacity(capacity: usize) -> Json {
        Json {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Appends trusted JSON text (punctuation, keys written in code).
    pub(super) fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    /// Appends a quoted, escaped JSON string.
    pub(super) fn string(&mut self, value: &str) {
        self.buf.push(b'"');
        escape_into(&mut self.buf, value);
        self.buf.push(b'"');
    }

    /// Appends an unsigned integer.
    pub(super) fn number(&mut self, value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = value;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[at..]);
    }

    /// Appends a quoted string of at most `limit` characters produced by
    /// `write`; longer text is cut at a character boundary and ends in `…`.
    pub(super) fn text(
        &mut self,
        limit: usize,
        write: impl FnOnce(&mut Clipped<'_>) -> fmt::Result,
    ) {
        self.buf.push(b'"');
        let mut sink = Clipped {
            buf: &mut self.buf,
            left: limit.saturating_sub(1),
            full: false,
        };
        // The sink never fails; a Display impl that fails leaves a shorter text.
        let _ = write(&mut sink);
        self.buf.push(b'"');
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// The escaping, length-capped sink of [`Json::text`].
#[derive(Debug)]
pub(super) struct Clipped<'b> {
    buf: &'b mut Vec<u8>,
    /// Characters that may still be written (one is kept back for `…`).
    left: usize,
    full: bool,
}

impl fmt::Write for Clipped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Ok(());
        }
        // `left` counts characters; cheap when `s` is short or ASCII.
        let fit = match s.char_indices().nth(self.left) {
            None => {
                self.left -= s.chars().count();
                escape_into(self.buf, s);
                return Ok(());
            }
            Some((at, _)) => at,
        };
        escape_into(self.buf, &s[..fit]);
        self.buf.extend_from_slice("…".as_bytes());
        self.left = 0;
        self.full = true;
        Ok(())
    }
}

/// Appends `s` escaped for the inside of a JSON string.
pub(super) fn escape_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Writes `items` separated by `sep`, at most `max` of them, then
/// `sep` + "and N more" for the rest; `item` writes one.
pub(super) fn join<W: fmt::Write, T>(
    out: &mut W,
    items: impl IntoIterator<Item = T>,
    sep: &str,
    max: usize,
    mut item: impl FnMut(&mut W, T) -> fmt::Result,
) -> fmt::Result {
    let mut written = 0usize;
    let mut more = 0usize;
    for value in items {
        if written == max {
            more += 1;
            continue;
        }
        if written > 0 {
            out.write_str(sep)?;
        }
        item(out, value)?;
        written += 1;
    }
    if more > 0 {
        write!(out, "{sep}and {more} more")?;
    }
    Ok(())
}

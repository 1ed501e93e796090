//! A small per-thread memo of parsed references.
//!
//! A cluster runs the same few hundred images over and over: every pod of a
//! Deployment names the same ones, and a review that denies an image or
//! verifies it parses it again (the explanation, the verification). Parsing
//! is a pure function of the string, so a thread remembers where the parts
//! of strings it parsed recently lie, and a string it has seen, byte for
//! byte, is answered from those positions instead of the grammar.
//!
//! What it can and cannot do:
//! - a hit needs the whole input to be equal to the remembered one (the
//!   hash only picks the slot), so a result is never another string's;
//! - only successful parses are kept, and only of inputs up to [`MAX_KEY`]
//!   bytes: an error is worked out again (its message names the input);
//! - [`SLOTS`] slots per thread, direct-mapped: a string evicts the one in
//!   its slot, so the memory is bounded (at most `SLOTS × MAX_KEY` bytes of
//!   keys per thread) and a flood of distinct images only costs misses,
//!   which are a parse as without the memo plus a hash and a copy.

use std::cell::RefCell;

use super::words::{load, mix};
use super::{DOCKER_HUB, ParseReferenceError, Reference};

/// Slots per thread (a power of two): room for the images a cluster's
/// workloads cycle through, at most `SLOTS × MAX_KEY` = 64 KiB of keys.
const SLOTS: usize = 256;
/// Longest input remembered. Image strings a cluster runs are well under it
/// (a long registry, path, tag and digest are some 200 bytes).
const MAX_KEY: usize = 256;

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// Parses `input` ([`Reference::parse_uncached`]), answering from the
/// thread's memo when `input` was parsed before.
pub(super) fn parse(input: &str) -> Result<Reference<'_>, ParseReferenceError> {
    if input.len() > MAX_KEY {
        return Reference::parse_uncached(input);
    }
    let hash = hash(input.as_bytes());
    // `try_with`: a parse during the thread's exit, after the memo is gone,
    // simply runs the grammar.
    let found = MEMO
        .try_with(|memo| {
            memo.try_borrow()
                .ok()
                .and_then(|memo| memo.find(hash, input))
        })
        .ok()
        .flatten();
    if let Some(reference) = found.and_then(|spans| spans.apply(input)) {
        return Ok(reference);
    }
    let parsed = Reference::parse_uncached(input)?;
    if let Some(spans) = Spans::of(input, &parsed) {
        let _ = MEMO.try_with(|memo| {
            if let Ok(mut memo) = memo.try_borrow_mut() {
                memo.keep(hash, input, spans);
            }
        });
    }
    Ok(parsed)
}

#[derive(Default)]
struct Memo {
    /// [`SLOTS`] slots once the first string is kept; `None` until one is
    /// kept in it.
    slots: Vec<Option<Slot>>,
}

struct Slot {
    hash: u64,
    /// The input, kept in a buffer that is reused when the slot is.
    key: String,
    spans: Spans,
}

impl Memo {
    fn find(&self, hash: u64, input: &str) -> Option<Spans> {
        let slot = self.slots.get(index(hash))?.as_ref()?;
        (slot.hash == hash && slot.key == input).then_some(slot.spans)
    }

    fn keep(&mut self, hash: u64, input: &str, spans: Spans) {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        let Some(place) = self.slots.get_mut(index(hash)) else {
            return;
        };
        match place {
            Some(slot) => {
                slot.hash = hash;
                slot.key.clear();
                slot.key.push_str(input);
                slot.spans = spans;
            }
            None => {
                *place = Some(Slot {
                    hash,
                    key: input.to_owned(),
                    spans,
                });
            }
        }
    }
}

fn index(hash: u64) -> usize {
    // The top bits are the best mixed.
    (hash >> (u64::BITS - SLOTS.trailing_zeros())) as usize
}

/// A hash of the length and, for inputs over 32 bytes, of four 8-byte
/// words: the first, one from the middle and the last two, where image
/// strings of one registry differ (name, tag, digest); shorter inputs are
/// hashed whole. It only picks a slot: equality is checked on the whole
/// input, so a collision, made on purpose or not, only costs a miss.
fn hash(bytes: &[u8]) -> u64 {
    let n = bytes.len();
    let word = |at: usize| load(bytes.get(at..).unwrap_or_default());
    let mut h = mix(0, n as u64);
    if n > 32 {
        for at in [0, n / 2 - 4, n - 16, n - 8] {
            h = mix(h, word(at));
        }
    } else {
        for at in (0..n).step_by(8) {
            h = mix(h, word(at));
        }
    }
    h
}

/// Where the parts of a parsed reference lie in its input.
#[derive(Clone, Copy, Debug)]
struct Spans {
    domain: Domain,
    library: bool,
    path: Span,
    tag: Option<Span>,
    digest: Option<Span>,
}

#[derive(Clone, Copy, Debug)]
enum Domain {
    /// [`DOCKER_HUB`] where the input names it another way (`index.docker.io`)
    /// or not at all.
    Hub,
    /// The empty domain (a name read whole as a path).
    Empty,
    At(Span),
}

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u16,
    end: u16,
}

impl Spans {
    /// The positions of `parsed`'s parts in `input`, when each is a part of
    /// it (or Docker Hub's name).
    fn of(input: &str, parsed: &Reference<'_>) -> Option<Spans> {
        let domain = if parsed.domain.is_empty() {
            Domain::Empty
        } else if let Some(span) = Span::of(input, parsed.domain) {
            Domain::At(span)
        } else if parsed.domain == DOCKER_HUB {
            Domain::Hub
        } else {
            return None;
        };
        Some(Spans {
            domain,
            library: parsed.library,
            path: Span::of(input, parsed.path)?,
            tag: optional(input, parsed.tag)?,
            digest: optional(input, parsed.digest)?,
        })
    }

    /// The reference these positions describe in `input` (the string they
    /// were taken from); `None`, never a panic, should one not fit.
    fn apply(self, input: &str) -> Option<Reference<'_>> {
        Some(Reference {
            domain: match self.domain {
                Domain::Hub => DOCKER_HUB,
                Domain::Empty => "",
                Domain::At(span) => span.apply(input)?,
            },
            library: self.library,
            path: self.path.apply(input)?,
            tag: match self.tag {
                Some(span) => Some(span.apply(input)?),
                None => None,
            },
            digest: match self.digest {
                Some(span) => Some(span.apply(input)?),
                None => None,
            },
        })
    }
}

/// `Some(None)` for an absent part, `None` when a present one is not in
/// `input`.
fn optional(input: &str, part: Option<&str>) -> Option<Option<Span>> {
    match part {
        None => Some(None),
        Some(part) => Span::of(input, part).map(Some),
    }
}

impl Span {
    /// Where `part` lies in `input`, if it is a slice of it.
    fn of(input: &str, part: &str) -> Option<Span> {
        let base = input.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        let start = at.checked_sub(base)?;
        let end = start.checked_add(part.len())?;
        if end > input.len() {
            return None;
        }
        Some(Span {
            start: u16::try_from(start).ok()?,
            end: u16::try_from(end).ok()?,
        })
    }

    fn apply(self, input: &str) -> Option<&str> {
        input.get(usize::from(self.start)..usize::from(self.end))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every field, `library` included.
    fn fields<'a>(r: &Reference<'a>) -> (&'a str, bool, &'a str, Option<&'a str>, Option<&'a str>) {
        (r.domain, r.library, r.path, r.tag, r.digest)
    }

    const IMAGES: [&str; 12] = [
        "nginx",
        "nginx:1.25",
        "library/nginx",
        "index.docker.io/library/nginx:1.25",
        "docker.io/nginx@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91",
        "registry.k8s.io/ingress-nginx/controller:v1.10.1",
        "ghcr.io/mycorp/payments-api:v2.14.3",
        "localhost:5000/a/b:c",
        "[::1]:5000/a:b",
        "my_registry.com/foo",
        "registry.example.com:443/team/app:1@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91",
        "busybox:1.36@sha256:9d75f0d7c398df565d7ac04c6819b62d6d8f9560f5eb4672596ecd8f7e96ae91",
    ];

    #[test]
    fn a_hit_is_the_parse_of_the_same_string() {
        for image in IMAGES {
            let fresh = Reference::parse_uncached(image).expect(image);
            // A miss, then a hit (each from a copy, so the slices are the copy's).
            for _ in 0..2 {
                let copy = image.to_owned();
                let memo = parse(&copy).expect(image);
                assert_eq!(fields(&memo), fields(&fresh), "{image}");
                let base = copy.as_ptr() as usize;
                for part in [memo.path].into_iter().chain(memo.tag).chain(memo.digest) {
                    let at = part.as_ptr() as usize;
                    assert!(
                        at >= base && at + part.len() <= base + copy.len(),
                        "{image}: {part}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_parsed_string_is_remembered_until_its_slot_is_taken() {
        let image = "ghcr.io/mycorp/remembered:v1";
        let in_memo = |s: &str| MEMO.with(|m| m.borrow().find(hash(s.as_bytes()), s).is_some());
        parse(image).expect("valid");
        assert!(in_memo(image));
        let other = (0..100_000)
            .map(|n| format!("ghcr.io/mycorp/other:v{n}"))
            .find(|s| index(hash(s.as_bytes())) == index(hash(image.as_bytes())))
            .expect("a string for the same slot");
        parse(&other).expect("valid");
        assert!(in_memo(&other));
        assert!(!in_memo(image));
    }

    #[test]
    fn errors_are_not_remembered_and_stay_errors() {
        // The empty string first: it hashes to 0, as an untouched slot
        // would if slots were not empty until used.
        for image in ["", "NGINX", "nginx:", "sha256:abc", "a//b", "a:b:c", ""] {
            for _ in 0..2 {
                let memo = parse(image).map(|r| fields(&r));
                let fresh = Reference::parse_uncached(image).map(|r| fields(&r));
                assert_eq!(memo, fresh, "{image}");
                assert!(memo.is_err(), "{image}");
                assert!(MEMO.with(|m| m.borrow().find(hash(image.as_bytes()), image).is_none()));
            }
        }
    }

    #[test]
    fn strings_sharing_a_slot_evict_each_other_and_stay_right() {
        // Find two valid images in the same slot.
        let first = "a/b:x0".to_owned();
        let slot = index(hash(first.as_bytes()));
        let second = (1..100_000)
            .map(|n| format!("a/b:x{n}"))
            .find(|s| index(hash(s.as_bytes())) == slot)
            .expect("a colliding tag");
        for _ in 0..3 {
            for image in [&first, &second] {
                let memo = parse(image).expect(image);
                assert_eq!(
                    fields(&memo),
                    fields(&Reference::parse_uncached(image).unwrap())
                );
            }
        }
    }

    #[test]
    fn long_and_unicode_inputs_are_parsed_as_without_the_memo() {
        let long = format!("r.io/{}:t", "a".repeat(300));
        let long_ok = format!("r.io/{}:t", "a/".repeat(110) + "a");
        for image in [
            long.as_str(),
            long_ok.as_str(),
            "ghcr.io/mycorp/pаyments:v1", // Cyrillic а
            "ghcr.io/mycorp/payments:v1\u{0}",
            "ghcr.io/mycorp/payments:v1 ",
        ] {
            for _ in 0..2 {
                assert_eq!(
                    parse(image).map(|r| fields(&r)),
                    Reference::parse_uncached(image).map(|r| fields(&r)),
                    "{image}"
                );
            }
        }
    }

    #[test]
    fn the_hash_spreads_similar_strings_over_the_slots() {
        let mut used = [false; SLOTS];
        for n in 0..1024 {
            used[index(hash(format!("ghcr.io/org/app:v{n}").as_bytes()))] = true;
        }
        assert!(used.iter().filter(|u| **u).count() > SLOTS * 3 / 4);
    }

    proptest! {
        /// Valid references and near misses (a byte changed), each parsed
        /// three times through the memo: always the parse without it.
        #[test]
        fn the_memo_never_changes_a_result(
            input in super::super::tests::arb_reference(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b'A'), Just(b':'), Just(b'/'), Just(b'@'), Just(b'.'), Just(b' ')],
        ) {
            let mut bent = input.clone().into_bytes();
            let i = at.index(bent.len());
            bent[i] = byte;
            let bent = String::from_utf8(bent).expect("ASCII");
            for image in [&input, &bent, &input, &bent, &input] {
                prop_assert_eq!(
                    parse(image).map(|r| fields(&r)),
                    Reference::parse_uncached(image).map(|r| fields(&r))
                );
            }
        }
    }
}

//! Multiply-rotate hashing of short byte strings, eight bytes at a time:
//! the memo of parsed references and the policy's registry trie pick their
//! slots with it. Not a defence against chosen collisions: both compare the
//! whole key after the hash has picked a place.

/// The 64-bit golden-ratio multiplier.
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// `h` with one more word mixed in.
#[inline]
pub(crate) fn mix(h: u64, word: u64) -> u64 {
    (h.rotate_left(23) ^ word).wrapping_mul(K)
}

/// The first eight bytes of `bytes`, little-endian, zero-padded.
#[inline]
pub(crate) fn load(bytes: &[u8]) -> u64 {
    match bytes.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => bytes
            .iter()
            .rev()
            .fold(0, |acc, b| (acc << 8) | u64::from(*b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_load_is_the_zero_padded_word() {
        assert_eq!(load(b""), 0);
        assert_eq!(load(b"ab"), u64::from_le_bytes(*b"ab\0\0\0\0\0\0"));
        assert_eq!(load(b"abcdefghij"), u64::from_le_bytes(*b"abcdefgh"));
    }
}

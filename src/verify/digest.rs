//! [`Digest`]: a validated `sha256:<64 lower-case hex>` content digest, and
//! the tag names cosign and the referrers fallback derive from it.
//!
//! Only sha256 is accepted: it is what registries, cosign and Kubernetes use
//! for image manifests, and a digest we cannot recompute is not evidence.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// A sha256 content digest (32 bytes), displayed as `sha256:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Why a string is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid sha256 digest {0:?}")]
pub struct DigestError(String);

impl Digest {
    /// Parses `sha256:<64 lower-case hex>`.
    pub fn parse(text: &str) -> Result<Digest, DigestError> {
        let bad = || DigestError(text.chars().take(80).collect());
        let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
        Digest::from_hex(hex).ok_or_else(bad)
    }

    /// Parses 64 lower-case hex characters (in-toto subject digests carry no
    /// `sha256:` prefix).
    pub fn from_hex(hex: &str) -> Option<Digest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Digest(out))
    }

    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lower-case hex characters.
    pub fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }

    /// The tag prefix cosign and the referrers fallback use: `sha256-<hex>`.
    pub fn tag(&self) -> String {
        format!("sha256-{}", self.hex())
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let text = "sha256:3230366ae65ae7d4acecba1a5296cc5aaeaca68d84d6499887097b5d7b0b25f5";
        let d = Digest::parse(text).unwrap();
        assert_eq!(d.to_string(), text);
        assert_eq!(d.tag(), text.replace(':', "-"));
        for bad in [
            "",
            "sha256:",
            "sha512:3230366ae65ae7d4acecba1a5296cc5aaeaca68d84d6499887097b5d7b0b25f5",
            "sha256:3230366AE65ae7d4acecba1a5296cc5aaeaca68d84d6499887097b5d7b0b25f5",
            "sha256:3230366ae65ae7d4acecba1a5296cc5aaeaca68d84d6499887097b5d7b0b25f",
            "sha256:é230366ae65ae7d4acecba1a5296cc5aaeaca68d84d6499887097b5d7b0b25",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Digest::of(b"{}").to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}

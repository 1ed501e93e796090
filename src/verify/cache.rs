//! The verification caches: results keyed by repository, image digest and
//! requirement fingerprint (never by tag), with separate allow and deny
//! lifetimes; and tag → digest resolutions, kept briefly. Both are bounded.

use std::hash::Hash;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::digest::Digest;
use crate::policy::{CacheConfig, Outcome};

/// Key of a cached result.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResultKey {
    /// `domain/path` of the repository the evidence was read from.
    pub(crate) repo: String,
    pub(crate) digest: Digest,
    pub(crate) fingerprint: u128,
}

/// A map whose entries expire; when full, expired entries are dropped and,
/// if that is not enough, an arbitrary eighth of the rest.
#[derive(Debug)]
pub(crate) struct Expiring<K: Eq + Hash, V> {
    map: DashMap<K, (V, Instant)>,
    max: usize,
}

impl<K: Eq + Hash + Clone, V: Clone> Expiring<K, V> {
    pub(crate) fn new(max: usize) -> Self {
        Expiring {
            map: DashMap::new(),
            max: max.max(1),
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q, now: Instant) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entry = self.map.get(key)?;
        (entry.1 > now).then(|| entry.0.clone())
    }

    pub(crate) fn insert(&self, key: K, value: V, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            self.map.remove(&key);
            return;
        }
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.map.retain(|_, (_, until)| *until > now);
            if self.map.len() >= self.max {
                let drop: Vec<K> = self
                    .map
                    .iter()
                    .take(self.max / 8 + 1)
                    .map(|e| e.key().clone())
                    .collect();
                for k in drop {
                    self.map.remove(&k);
                }
            }
        }
        self.map.insert(key, (value, now + ttl));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// Both caches.
#[derive(Debug)]
pub(crate) struct Caches {
    pub(crate) config: CacheConfig,
    pub(crate) results: Expiring<ResultKey, Outcome>,
    /// `domain/path:tag` → digest.
    pub(crate) tags: Expiring<String, Digest>,
}

impl Caches {
    pub(crate) fn new(config: CacheConfig) -> Caches {
        Caches {
            config,
            results: Expiring::new(config.max_entries),
            tags: Expiring::new(config.max_entries),
        }
    }

    /// Stores a result: verified for `allow_ttl`, definite failures for
    /// `deny_ttl`; an unavailable registry is never cached.
    pub(crate) fn store(&self, key: ResultKey, outcome: Outcome, now: Instant) {
        let ttl = match outcome {
            Outcome::Verified => self.config.allow_ttl,
            Outcome::Unavailable => return,
            _ => self.config.deny_ttl,
        };
        self.results.insert(key, outcome, ttl, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_bounds() {
        let c: Expiring<u32, u32> = Expiring::new(16);
        let now = Instant::now();
        c.insert(1, 10, Duration::from_secs(1), now);
        assert_eq!(c.get(&1, now), Some(10));
        assert_eq!(c.get(&1, now + Duration::from_secs(2)), None);
        for i in 0..100 {
            c.insert(i, i, Duration::from_secs(60), now);
        }
        assert!(c.len() <= 16);
        c.insert(5000, 1, Duration::ZERO, now);
        assert_eq!(c.get(&5000, now), None);
    }

    #[test]
    fn unavailable_is_not_cached() {
        let caches = Caches::new(CacheConfig::default());
        let key = ResultKey {
            repo: "r".into(),
            digest: Digest::of(b"x"),
            fingerprint: 1,
        };
        let now = Instant::now();
        caches.store(key.clone(), Outcome::Unavailable, now);
        assert_eq!(caches.results.get(&key, now), None);
        caches.store(key.clone(), Outcome::SignatureMissing, now);
        assert_eq!(
            caches.results.get(&key, now),
            Some(Outcome::SignatureMissing)
        );
    }
}

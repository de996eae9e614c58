//! A small, fast, deterministic hasher for the engine's internal hash maps.
//!
//! The keys are label sets, label values and small integers built from trusted data, so
//! SipHash's DoS resistance buys nothing here while costing most of the grouping time. The
//! hash is seedless and therefore deterministic, but no map's iteration order may reach any
//! output anyway: every map only translates keys into indices of an ordered `Vec`.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The FxHash multiplier of `rustc-hash` 2.
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// FxHash-style word-at-a-time hasher.
#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = self.hash.wrapping_add(w).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while bytes.len() >= 8 {
            let (w, rest) = bytes.split_at(8);
            self.add(u64::from_le_bytes(w.try_into().unwrap_or_default()));
            bytes = rest;
        }
        if bytes.len() >= 4 {
            let (w, rest) = bytes.split_at(4);
            self.add(u32::from_le_bytes(w.try_into().unwrap_or_default()) as u64);
            bytes = rest;
        }
        for &b in bytes {
            self.add(b as u64);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest; hashbrown indexes buckets with them.
        self.hash.rotate_left(26)
    }
}

/// Builds [`FxHasher`]s.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// An empty [`FxMap`].
pub(crate) fn fx_map<K, V>() -> FxMap<K, V> {
    HashMap::with_hasher(FxBuild::default())
}

/// A `HashSet` with [`FxHasher`].
pub(crate) type FxSet<T> = HashSet<T, FxBuild>;

//! The per-worker caches (CA lists, encoded client chains): bounded in bytes, least
//! recently used out first. nginx workers are single-threaded, so each thread has its
//! own caches and no lock; the limits are process-wide (set once, e.g. in
//! `init_by_lua`, inherited by every worker).
//!
//! Entries are found by a hash of their content (a process-random `RandomState`, so a
//! client cannot aim many chains at one bucket) and confirmed by the caller's exact
//! comparison: a hash collision only costs a comparison.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Selects the cache of the CA lists given to `request_client_certificate`, for
/// `resty_client_tls_cache_limit` and `resty_client_tls_cache_usage`.
pub const RESTY_CLIENT_TLS_CACHE_CA: i32 = 0;
/// Selects the cache of the encoded chains of `get_full_client_certificate_chain`.
pub const RESTY_CLIENT_TLS_CACHE_CHAIN: i32 = 1;

/// Default byte limit of the CA-list cache of each worker: about 1700 lists of 5 CAs
/// at their upper estimate (36 KiB each when the cache alone holds their certificates;
/// about 2 KiB of real memory when the caller keeps its parsed lists, as Kong does).
pub const RESTY_CLIENT_TLS_CA_CACHE_BYTES: usize = 64 << 20;
/// Default byte limit of the chain cache of each worker: about 300 distinct 3-certificate
/// chains.
pub const RESTY_CLIENT_TLS_CHAIN_CACHE_BYTES: usize = 2 << 20;

static CA_LIMIT: AtomicUsize = AtomicUsize::new(RESTY_CLIENT_TLS_CA_CACHE_BYTES);
static CHAIN_LIMIT: AtomicUsize = AtomicUsize::new(RESTY_CLIENT_TLS_CHAIN_CACHE_BYTES);

/// The limit of cache `which`, or None for an unknown cache.
pub fn limit_of(which: i32) -> Option<&'static AtomicUsize> {
    match which {
        RESTY_CLIENT_TLS_CACHE_CA => Some(&CA_LIMIT),
        RESTY_CLIENT_TLS_CACHE_CHAIN => Some(&CHAIN_LIMIT),
        _ => None,
    }
}

pub(crate) fn limit(which: i32) -> usize {
    limit_of(which).map_or(0, |l| l.load(Ordering::Relaxed))
}

/// A hasher of the process-wide random state.
pub(crate) fn hasher() -> impl Hasher {
    static STATE: OnceLock<RandomState> = OnceLock::new();
    STATE.get_or_init(RandomState::new).build_hasher()
}

struct Slot<V> {
    hash: u64,
    value: V,
    cost: usize,
    used: u64,
}

/// Values of type `V` (cheap to clone: an `Rc` or `Arc`), each with a byte cost.
pub(crate) struct Lru<V> {
    slots: HashMap<u64, Slot<V>>,
    buckets: HashMap<u64, Vec<u64>>,
    bytes: usize,
    clock: u64,
    next_id: u64,
}

impl<V: Clone> Lru<V> {
    pub(crate) fn new() -> Lru<V> {
        Lru { slots: HashMap::new(), buckets: HashMap::new(), bytes: 0, clock: 0, next_id: 0 }
    }

    /// The entry with `hash` for which `same` holds, marked as just used. A limit lowered
    /// since the last call applies first (0 empties the cache).
    pub(crate) fn get(&mut self, hash: u64, limit: usize, same: impl Fn(&V) -> bool) -> Option<V> {
        if self.bytes > limit {
            self.shrink(limit);
        }
        let ids = self.buckets.get(&hash)?;
        self.clock += 1;
        for id in ids {
            let slot = self.slots.get_mut(id).expect("bucket ids are live");
            if same(&slot.value) {
                slot.used = self.clock;
                return Some(slot.value.clone());
            }
        }
        None
    }

    /// Adds `value`, then drops the least recently used entries until the cache holds
    /// at most `limit` bytes (down to 3/4 of it, so that a full cache does not sort its
    /// entries on every insertion). An entry larger than `limit` is not kept.
    pub(crate) fn insert(&mut self, hash: u64, value: V, cost: usize, limit: usize) {
        if cost > limit {
            self.shrink(limit);
            return;
        }
        self.clock += 1;
        let id = self.next_id;
        self.next_id += 1;
        self.slots.insert(id, Slot { hash, value, cost, used: self.clock });
        self.buckets.entry(hash).or_default().push(id);
        self.bytes += cost;
        if self.bytes > limit {
            self.shrink(limit - limit / 4);
        }
    }

    fn shrink(&mut self, target: usize) {
        if self.bytes <= target {
            return;
        }
        let mut order: Vec<(u64, u64)> = self.slots.iter().map(|(id, s)| (s.used, *id)).collect();
        order.sort_unstable();
        for (_, id) in order {
            if self.bytes <= target {
                break;
            }
            let slot = self.slots.remove(&id).expect("listed above");
            self.bytes -= slot.cost;
            let bucket = self.buckets.get_mut(&slot.hash).expect("every slot has a bucket");
            bucket.retain(|&x| x != id);
            if bucket.is_empty() {
                self.buckets.remove(&slot.hash);
            }
        }
    }

    /// (bytes, entries) held now.
    pub(crate) fn usage(&self) -> (usize, usize) {
        (self.bytes, self.slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_the_byte_limit_and_drops_the_least_recently_used() {
        let mut c: Lru<u32> = Lru::new();
        for i in 0..10u32 {
            c.insert(u64::from(i), i, 100, 1000);
        }
        assert_eq!(c.usage(), (1000, 10));
        // 0 is used again: 1 is now the oldest.
        assert_eq!(c.get(0, 1000, |&v| v == 0), Some(0));
        c.insert(10, 10, 100, 1000);
        assert!(c.usage().0 <= 1000, "{:?}", c.usage());
        assert_eq!(c.get(0, 1000, |&v| v == 0), Some(0), "recently used survives");
        assert_eq!(c.get(1, 1000, |&v| v == 1), None, "least recently used went first");
        assert_eq!(c.get(10, 1000, |&v| v == 10), Some(10));
    }

    #[test]
    fn same_hash_is_confirmed_by_the_comparison() {
        let mut c: Lru<u32> = Lru::new();
        c.insert(7, 1, 10, 100);
        c.insert(7, 2, 10, 100);
        assert_eq!(c.get(7, 100, |&v| v == 2), Some(2));
        assert_eq!(c.get(7, 100, |&v| v == 3), None);
        assert_eq!(c.get(8, 100, |_| true), None);
    }

    #[test]
    fn an_entry_over_the_limit_is_not_kept_and_zero_turns_the_cache_off() {
        let mut c: Lru<u32> = Lru::new();
        c.insert(1, 1, 50, 100);
        c.insert(2, 2, 101, 100);
        assert_eq!(c.get(2, 100, |_| true), None);
        assert_eq!(c.usage(), (50, 1));
        assert_eq!(c.get(1, 0, |_| true), None, "a limit lowered to 0 empties the cache on the next lookup");
        assert_eq!(c.usage(), (0, 0));
        c.insert(3, 3, 1, 0);
        assert_eq!(c.usage(), (0, 0), "and keeps nothing");
    }
}

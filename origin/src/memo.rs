//! A small bounded in-process map whose entries expire, for values that are costly to recompute
//! and safe to reuse for a while: verified token signatures and user profiles.
//!
//! A memo is per process. What may go in one is what stays true whichever instance of the
//! origin answers: never revocation state, roles or refresh decisions, which live in Redis and
//! SQL for every instance to see (each user in `state::App` says why its entries qualify).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

/// Entries live until their own expiry (unix seconds). When full, expired entries are dropped,
/// and if that frees nothing the map is cleared: a hard memory bound rather than an LRU, since
/// the working set (tokens in use, users active) refills it within one access-token lifetime.
#[derive(Debug)]
pub struct Memo<K, V> {
    map: RwLock<HashMap<K, (V, i64)>>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The value, if present and not expired at `now`.
    pub fn get(&self, key: &K, now: i64) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: K, value: V, expires: i64, now: i64) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.capacity {
            map.retain(|_, (_, e)| *e > now);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, (value, expires));
    }

    pub fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_stays_bounded() {
        let memo = Memo::new(2);
        memo.insert("a", 1, 10, 0);
        assert_eq!(memo.get(&"a", 9), Some(1));
        assert_eq!(memo.get(&"a", 10), None);
        memo.insert("b", 2, 5, 0);
        // Full: the expired "b" (at now = 6) makes room.
        memo.insert("c", 3, 20, 6);
        assert_eq!(memo.len(), 2);
        assert_eq!(memo.get(&"a", 6), Some(1));
        // Full of live entries: cleared rather than grown.
        memo.insert("d", 4, 20, 6);
        assert_eq!(memo.len(), 1);
        assert_eq!(memo.get(&"d", 6), Some(4));
    }
}

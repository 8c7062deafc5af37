//! A map whose entries are trusted for a short while: the parsed workflows and webhook records
//! that the event path reads instead of the store.
//!
//! Changes made through this server remove entries at once (`remove`, `retain`); the lifetime
//! bounds how long a change made through another server sharing the database takes to show.
//! Concurrency: one mutex, held only to copy an entry in or out.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long an entry is trusted.
pub(crate) const LIFETIME: Duration = Duration::from_secs(2);

pub(crate) struct BriefCache<V> {
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Clone> BriefCache<V> {
    pub(crate) fn new() -> Self {
        BriefCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key`, if it is younger than [`LIFETIME`].
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.lock()
            .get(key)
            .filter(|(_, at)| at.elapsed() < LIFETIME)
            .map(|(value, _)| value.clone())
    }

    pub(crate) fn insert(&self, key: &str, value: V) {
        self.lock().insert(key.to_owned(), (value, Instant::now()));
    }

    pub(crate) fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Keeps only the entries `keep` accepts.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&V) -> bool) {
        self.lock().retain(|_, (value, _)| keep(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_kept_removed_and_filtered() {
        let cache = BriefCache::new();
        cache.insert("a", 1);
        cache.insert("b", 2);
        assert_eq!(cache.get("a"), Some(1));
        cache.remove("a");
        assert_eq!(cache.get("a"), None);
        cache.retain(|v| *v != 2);
        assert_eq!(cache.get("b"), None);
    }
}

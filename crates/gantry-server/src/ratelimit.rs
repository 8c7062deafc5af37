//! Fixed-window counters per key (a source address, an account): the abuse limits of the
//! login doors and of authentication failures.
//!
//! In memory and per server: a limit is a brake on guessing, not an accounting. A window
//! starts at a key's first hit and resets when it has passed; the map forgets windows that
//! have passed once it holds more than [`PRUNE_AT`] keys, so a flood of sources cannot grow it
//! without bound. Concurrency: one mutex, held for a map lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Keys kept before passed windows are forgotten.
pub const PRUNE_AT: usize = 10_000;

/// At most `max` hits per key in any window of `window`.
#[derive(Debug)]
pub struct Limiter {
    max: u32,
    window: Duration,
    hits: Mutex<HashMap<String, (Instant, u32)>>,
    /// How many keys the map holds, readable without the lock: the common case, nobody
    /// counted at all, costs one atomic load.
    keys: AtomicUsize,
}

impl Limiter {
    pub fn new(max: u32, window: Duration) -> Limiter {
        Limiter {
            max,
            window,
            hits: Mutex::new(HashMap::new()),
            keys: AtomicUsize::new(0),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, (Instant, u32)>) -> T) -> T {
        let mut hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let answer = f(&mut hits);
        self.keys.store(hits.len(), Ordering::Relaxed);
        answer
    }

    /// Counts a hit; `Err(wait)` (the hit not counted) when `key` is over its limit.
    pub fn hit(&self, key: &str) -> Result<(), Duration> {
        if let Some(wait) = self.blocked(key) {
            return Err(wait);
        }
        self.record(key);
        Ok(())
    }

    /// How long `key` must wait, if it is over its limit; counts nothing.
    pub fn blocked(&self, key: &str) -> Option<Duration> {
        if self.is_idle() {
            return None;
        }
        self.with(|hits| {
            let (start, n) = hits.get(key)?;
            let passed = start.elapsed();
            (passed < self.window && *n >= self.max).then(|| self.window - passed)
        })
    }

    /// Counts a hit (a failure) against `key`.
    pub fn record(&self, key: &str) {
        let window = self.window;
        self.with(|hits| {
            if hits.len() >= PRUNE_AT {
                hits.retain(|_, (start, _)| start.elapsed() < window);
            }
            let entry = hits.entry(key.to_owned()).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= window {
                *entry = (Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
        });
    }

    /// Forgets `key` (a login that succeeded clears its account's failures).
    pub fn clear(&self, key: &str) {
        self.with(|hits| hits.remove(key));
    }

    /// Whether no key is counted at all (the common case: nothing to look up).
    pub fn is_idle(&self) -> bool {
        self.keys.load(Ordering::Relaxed) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_blocks_until_the_window_passes() {
        let l = Limiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(l.hit("a").is_ok());
        }
        let wait = l.hit("a").unwrap_err();
        assert!(wait <= Duration::from_millis(200));
        // Another key is not affected.
        assert!(l.hit("b").is_ok());
        std::thread::sleep(Duration::from_millis(220));
        assert!(l.hit("a").is_ok());
        assert!(l.blocked("a").is_none());
    }

    #[test]
    fn failures_block_and_a_success_clears_them() {
        let l = Limiter::new(2, Duration::from_secs(60));
        assert!(l.is_idle());
        l.record("ann");
        assert!(l.blocked("ann").is_none());
        l.record("ann");
        assert!(l.blocked("ann").is_some());
        l.clear("ann");
        assert!(l.blocked("ann").is_none());
        assert!(l.is_idle());
    }

    #[test]
    fn passed_windows_are_forgotten_when_the_map_is_full() {
        let l = Limiter::new(1, Duration::from_millis(1));
        for i in 0..PRUNE_AT {
            l.record(&format!("k{i}"));
        }
        std::thread::sleep(Duration::from_millis(5));
        l.record("new");
        assert_eq!(l.with(|h| h.len()), 1);
    }
}

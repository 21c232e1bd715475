//! Throttling of failed client authentication (SECURITY row 25, RFC 6819 §4.3.2).
//!
//! Owns [`Throttle`]: per key (a client address; for sign-in pages also a username), failed
//! authentications are counted in a fixed window; past the limit the key is refused until
//! the window ends. Client authentication counts by address rather than by client id, which
//! keeps an attacker from locking a real client out by guessing at its id.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most addresses tracked at once; past this, expired windows are dropped first.
const MAX_TRACKED: usize = 50_000;

/// Failed-authentication counters.
pub struct Throttle<K = IpAddr> {
    limit: u32,
    window: i64,
    seen: Mutex<HashMap<K, (i64, u32)>>,
}

impl<K: Hash + Eq> Throttle<K> {
    /// At most `limit` failures per `window` seconds from one address (0 disables).
    pub fn new(limit: u32, window: i64) -> Self {
        Self {
            limit,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the address is currently blocked.
    pub fn blocked(&self, ip: &K, now: i64) -> bool {
        if self.limit == 0 {
            return false;
        }
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        matches!(seen.get(ip), Some((start, n)) if now < start + self.window && *n >= self.limit)
    }

    /// Records one failure.
    pub fn fail(&self, ip: K, now: i64) {
        if self.limit == 0 {
            return;
        }
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() >= MAX_TRACKED {
            let window = self.window;
            seen.retain(|_, (start, _)| now < *start + window);
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_forgets_after_the_window() {
        let t = Throttle::new(3, 60);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(!t.blocked(&ip, 100));
            t.fail(ip, 100);
        }
        assert!(t.blocked(&ip, 100));
        assert!(!t.blocked(&"127.0.0.3".parse().unwrap(), 100));
        assert!(!t.blocked(&ip, 160));
    }
}

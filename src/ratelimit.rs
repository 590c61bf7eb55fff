//! A token bucket: a burst of `capacity`, refilled at `rate` tokens a second; and one bucket per
//! client address, for what must be slowed across all the connections of one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use parking_lot::Mutex;

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(capacity: u32, rate: f64) -> Self {
        Self::new_at(capacity, rate, Instant::now())
    }

    pub fn new_at(capacity: u32, rate: f64, now: Instant) -> Self {
        let capacity = f64::from(capacity);
        Self { capacity, rate, tokens: capacity, last: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.try_take_at(Instant::now())
    }

    /// Whether the bucket will have refilled by `now`.
    pub fn is_full_at(&self, now: Instant) -> bool {
        self.tokens_at(now) >= self.capacity
    }

    fn tokens_at(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        (self.tokens + elapsed * self.rate).min(self.capacity)
    }

    pub fn try_take_at(&mut self, now: Instant) -> bool {
        self.try_take_many_at(1, now)
    }

    /// Takes `n` tokens if there are as many (a cost in bytes, say).
    pub fn try_take_many_at(&mut self, n: usize, now: Instant) -> bool {
        let n = n as f64;
        self.tokens = self.tokens_at(now);
        self.last = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }
}

/// One token bucket per client address (an IPv6 client's network, see
/// [`crate::admission::address_key`]); addresses whose bucket is full again are forgotten.
#[derive(Debug)]
pub struct PerAddress {
    capacity: u32,
    rate: f64,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl PerAddress {
    pub fn new(capacity: u32, rate: f64) -> Self {
        Self { capacity, rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `address` if it has one.
    pub fn try_take_at(&self, address: IpAddr, now: Instant) -> bool {
        self.try_take_many_at(address, 1, now)
    }

    /// Takes `n` tokens for `address` if it has as many.
    pub fn try_take_many_at(&self, address: IpAddr, n: usize, now: Instant) -> bool {
        let mut buckets = self.buckets.lock();
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| !b.is_full_at(now));
        }
        buckets
            .entry(address)
            .or_insert_with(|| TokenBucket::new_at(self.capacity, self.rate, now))
            .try_take_many_at(n, now)
    }

    /// Whether `address` has a token left, without taking it.
    pub fn has_token_at(&self, address: IpAddr, now: Instant) -> bool {
        self.buckets.lock().get(&address).is_none_or(|b| b.tokens_at(now) >= 1.0)
    }
}

/// Addresses tracked before the full buckets are swept out: the table holds only addresses that
/// were refused or nearly so lately.
const SWEEP_AT: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_address_has_its_own_bucket() {
        let limiter = PerAddress::new(2, 1.0);
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(limiter.try_take_at(a, t0) && limiter.try_take_at(a, t0));
        assert!(!limiter.has_token_at(a, t0));
        assert!(!limiter.try_take_at(a, t0));
        assert!(limiter.try_take_at(b, t0), "another address is not affected");
        assert!(limiter.try_take_at(a, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(3, 2.0, t0);
        assert!((0..3).all(|_| b.try_take_at(t0)));
        assert!(!b.try_take_at(t0));
        assert!(b.try_take_at(t0 + Duration::from_millis(500)));
        assert!(!b.try_take_at(t0 + Duration::from_millis(500)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!((0..3).all(|_| b.try_take_at(later)));
        assert!(!b.try_take_at(later));
    }
}

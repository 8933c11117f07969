//! Per-client token buckets on IPC requests: a runaway loop in one program is slowed down
//! without affecting any other client.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by client identity.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `rate` requests per second on average, bursts of up to `burst`.
    pub fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// `per_minute` events a minute on average, bursts of up to `per_minute`.
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            rate: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(per_minute.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `client`'s bucket; `Err(wait)` when it is empty.
    pub fn check(&self, client: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Forget idle clients so the map cannot grow without bound.
        if buckets.len() > 10_000 {
            let full = self.burst;
            let rate = self.rate;
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < full);
        }
        // Every request passes here: a known client's name is not copied.
        match buckets.get_mut(client) {
            Some(b) => self.take(b, now),
            None => {
                let mut b = Bucket {
                    tokens: self.burst,
                    last: now,
                };
                let taken = self.take(&mut b, now);
                buckets.insert(client.to_owned(), b);
                taken
            }
        }
    }

    /// Refills `b` for the time since it was last used, then takes one request from it.
    fn take(&self, b: &mut Bucket, now: Instant) -> Result<(), Duration> {
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_client_waits_and_others_do_not() {
        let r = RateLimiter::new(10, 5);
        for _ in 0..5 {
            r.check("a").unwrap();
        }
        let wait = r.check("a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        r.check("b").unwrap();
    }
}

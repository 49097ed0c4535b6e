//! A token bucket per host entry: hosts rate-limit a token, so one token's calls are paced.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces calls to `rate` a second, with bursts of up to `rate` calls.
#[derive(Debug)]
pub struct TokenBucket {
    /// Calls per second; 0 or less means unpaced.
    rate: f64,
    state: Mutex<Level>,
}

#[derive(Debug)]
struct Level {
    /// Calls that may start now; negative when callers are already waiting for refills.
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64) -> TokenBucket {
        let rate = if rate.is_finite() { rate } else { 0.0 };
        TokenBucket {
            rate,
            state: Mutex::new(Level {
                tokens: rate.max(1.0),
                at: Instant::now(),
            }),
        }
    }

    /// Waits until one call may start.
    pub async fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Takes a token now (possibly into debt) and says how long to wait for it.
    fn reserve(&self) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let mut level = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let burst = self.rate.max(1.0);
        let refill = now.duration_since(level.at).as_secs_f64() * self.rate;
        level.tokens = (level.tokens + refill).min(burst);
        level.at = now;
        level.tokens -= 1.0;
        if level.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-level.tokens / self.rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_calls_wait_their_turn() {
        let bucket = TokenBucket::new(2.0);
        assert_eq!(bucket.reserve(), Duration::ZERO);
        assert_eq!(bucket.reserve(), Duration::ZERO, "a burst of `rate` calls");
        let third = bucket.reserve().as_millis();
        let fourth = bucket.reserve().as_millis();
        assert!((490..=500).contains(&third), "third waits ~0.5s: {third}ms");
        assert!(
            (990..=1000).contains(&fourth),
            "fourth waits ~1s: {fourth}ms"
        );
    }

    #[test]
    fn zero_means_unpaced() {
        let bucket = TokenBucket::new(0.0);
        for _ in 0..100 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
    }
}

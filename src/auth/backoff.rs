//! Failed-login backoff, as Argo CD's: failures are counted per user and per source address
//! within a window; past the limit, attempts are refused (429) until the window has passed, so
//! guessing a password costs hours, not seconds. A success clears the user's count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many users or addresses are tracked; the stalest go first.
const MAX_TRACKED: usize = 10_000;

/// Refused: too many recent failures; try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed logins; try again in {} s", retry_after.as_secs().max(1))]
pub struct TooManyFailures {
    pub retry_after: Duration,
}

/// Recent failures per key.
struct Counter {
    limit: u32,
    failures: HashMap<String, Vec<Instant>>,
}

impl Counter {
    fn check(&mut self, key: &str, window: Duration, now: Instant) -> Result<(), TooManyFailures> {
        let Some(times) = self.failures.get_mut(key) else {
            return Ok(());
        };
        times.retain(|t| now.duration_since(*t) < window);
        if self.limit > 0 && times.len() >= self.limit as usize {
            let oldest = times.iter().min().copied().unwrap_or(now);
            return Err(TooManyFailures {
                retry_after: window.saturating_sub(now.duration_since(oldest)),
            });
        }
        Ok(())
    }

    fn fail(&mut self, key: &str, window: Duration, now: Instant) {
        if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(key) {
            self.failures
                .retain(|_, times| times.iter().any(|t| now.duration_since(*t) < window));
            if self.failures.len() >= MAX_TRACKED {
                let stalest = self
                    .failures
                    .iter()
                    .min_by_key(|(_, times)| times.iter().max().copied())
                    .map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    self.failures.remove(&k);
                }
            }
        }
        self.failures.entry(key.to_owned()).or_default().push(now);
    }
}

/// Failed logins per user and per source address.
pub struct LoginBackoff {
    window: Duration,
    users: Mutex<Counter>,
    addresses: Mutex<Counter>,
}

impl LoginBackoff {
    /// Refuses a user after `per_user` failures and an address after `per_address` failures
    /// within `window` (0 turns a limit off).
    pub fn new(per_user: u32, per_address: u32, window: Duration) -> LoginBackoff {
        let counter = |limit| {
            Mutex::new(Counter {
                limit,
                failures: HashMap::new(),
            })
        };
        LoginBackoff {
            window,
            users: counter(per_user),
            addresses: counter(per_address),
        }
    }

    /// Whether `user` may try to log in from `address` now.
    pub fn check(&self, user: &str, address: &str) -> Result<(), TooManyFailures> {
        let now = Instant::now();
        lock(&self.users).check(user, self.window, now)?;
        lock(&self.addresses).check(address, self.window, now)
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, address: &str) {
        let now = Instant::now();
        lock(&self.users).fail(user, self.window, now);
        lock(&self.addresses).fail(address, self.window, now);
    }

    /// Records a success: the user's failures are forgiven (the address's are not).
    pub fn succeeded(&self, user: &str) {
        lock(&self.users).failures.remove(user);
    }
}

fn lock(counter: &Mutex<Counter>) -> std::sync::MutexGuard<'_, Counter> {
    counter.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_refused_after_the_limit_and_a_success_forgives_them() {
        let backoff = LoginBackoff::new(3, 100, Duration::from_secs(300));
        for _ in 0..3 {
            assert!(backoff.check("alice", "10.0.0.1").is_ok());
            backoff.failed("alice", "10.0.0.1");
        }
        let refused = backoff
            .check("alice", "10.0.0.2")
            .expect_err("a fourth try");
        assert!(
            refused.retry_after > Duration::from_secs(290),
            "{refused:?}"
        );
        assert!(
            backoff.check("bob", "10.0.0.1").is_ok(),
            "bob pays for alice"
        );
        backoff.succeeded("alice");
        assert!(backoff.check("alice", "10.0.0.1").is_ok());
    }

    #[test]
    fn an_address_is_refused_across_users_and_failures_leave_the_window() {
        let backoff = LoginBackoff::new(100, 2, Duration::from_millis(200));
        backoff.failed("a", "10.0.0.9");
        backoff.failed("b", "10.0.0.9");
        assert!(
            backoff.check("c", "10.0.0.9").is_err(),
            "a spraying address"
        );
        assert!(backoff.check("c", "10.0.0.8").is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            backoff.check("c", "10.0.0.9").is_ok(),
            "the window never ends"
        );
    }
}

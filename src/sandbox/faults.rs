//! Programmatic fault injection: the next N matching requests fail or are delayed.

use std::sync::Mutex;
use std::time::Duration;

/// What an injected fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status code (500 InternalError or 429 TooManyRequests with Retry-After).
    Fail(u16),
    /// Wait this long before handling the request normally.
    Delay(Duration),
}

/// Which requests a fault hits: all of the given conditions hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultMatch {
    /// The path contains this.
    pub path_contains: String,
    /// The method is this (any case); any method when None.
    pub method: Option<String>,
    /// `Some(false)`: only real requests, never a server-side dry-run (`?dryRun=All`), so a fault
    /// meant for a write cannot be spent on the dry-run that precedes it; `Some(true)`: only
    /// dry-runs; None: both.
    pub dry_run: Option<bool>,
}

impl FaultMatch {
    /// Requests whose path contains `path_contains`, with `method` when given.
    pub fn new(path_contains: &str, method: Option<&str>) -> FaultMatch {
        FaultMatch {
            path_contains: path_contains.to_string(),
            method: method.map(str::to_ascii_uppercase),
            dry_run: None,
        }
    }

    /// Only requests that really write: no dry-runs.
    pub fn writes_only(mut self) -> FaultMatch {
        self.dry_run = Some(false);
        self
    }

    fn hits(&self, method: &str, path: &str, dry_run: bool) -> bool {
        path.contains(&self.path_contains)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.dry_run.is_none_or(|d| d == dry_run)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    matcher: FaultMatch,
    remaining: usize,
    action: FaultAction,
}

/// Faults waiting to hit requests; shared by the server and whoever injects them.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    hits: Mutex<usize>,
    /// Added to every request no rule matches, as a remote API server's round trip would.
    latency: Mutex<Duration>,
}

impl Faults {
    /// The next `n` requests whose path contains `path_contains` (and whose method is `method`,
    /// when given) are answered with `status` (500 or 429; anything else is answered as 500).
    pub fn fail_next(&self, n: usize, path_contains: &str, method: Option<&str>, status: u16) {
        self.add(n, path_contains, method, FaultAction::Fail(status));
    }

    /// The next `n` matching requests are delayed by `delay`, then served.
    pub fn delay_next(&self, n: usize, path_contains: &str, method: Option<&str>, delay: Duration) {
        self.add(n, path_contains, method, FaultAction::Delay(delay));
    }

    fn add(&self, n: usize, path_contains: &str, method: Option<&str>, action: FaultAction) {
        self.inject(n, FaultMatch::new(path_contains, method), action);
    }

    /// The next `n` requests that `matcher` hits get `action` (a `Fail` status other than 429
    /// is answered as 500).
    pub fn inject(&self, n: usize, matcher: FaultMatch, action: FaultAction) {
        let action = match action {
            FaultAction::Fail(429) => FaultAction::Fail(429),
            FaultAction::Fail(_) => FaultAction::Fail(500),
            delay => delay,
        };
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.push(Rule {
            matcher,
            remaining: n,
            action,
        });
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        self.rules.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// How many requests faults have hit so far.
    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delays every request by `latency` from now on (zero turns it off), so load is I/O-bound
    /// as against a real cluster; rules still apply first.
    pub fn set_latency(&self, latency: Duration) {
        *self.latency.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// The fault for this request (`dry_run`: it asked for a server-side dry-run), consuming
    /// one use of the first matching rule; else the latency, if one is set.
    pub fn take(&self, method: &str, path: &str, dry_run: bool) -> Option<FaultAction> {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let found = rules
            .iter()
            .position(|r| r.remaining > 0 && r.matcher.hits(method, path, dry_run));
        let Some(idx) = found else {
            let latency = *self.latency.lock().unwrap_or_else(|e| e.into_inner());
            return (!latency.is_zero()).then_some(FaultAction::Delay(latency));
        };
        let rule = &mut rules[idx];
        rule.remaining -= 1;
        let action = rule.action;
        if rule.remaining == 0 {
            rules.remove(idx);
        }
        *self.hits.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Some(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latency_delays_every_request_no_rule_matches() {
        let f = Faults::default();
        assert_eq!(f.take("GET", "/api/v1/pods", false), None);
        f.set_latency(Duration::from_millis(20));
        f.fail_next(1, "/pods", None, 500);
        assert_eq!(
            f.take("GET", "/api/v1/pods", false),
            Some(FaultAction::Fail(500))
        );
        assert_eq!(
            f.take("GET", "/api/v1/pods", false),
            Some(FaultAction::Delay(Duration::from_millis(20)))
        );
        assert_eq!(f.hits(), 1, "latency is not a fault hit");
    }

    #[test]
    fn faults_are_consumed() {
        let f = Faults::default();
        f.fail_next(2, "/configmaps", Some("get"), 429);
        assert_eq!(
            f.take("POST", "/api/v1/namespaces/a/configmaps", false),
            None
        );
        assert_eq!(
            f.take("GET", "/api/v1/namespaces/a/configmaps", false),
            Some(FaultAction::Fail(429))
        );
        assert_eq!(
            f.take("GET", "/api/v1/namespaces/a/configmaps/x", true),
            Some(FaultAction::Fail(429))
        );
        assert_eq!(
            f.take("GET", "/api/v1/namespaces/a/configmaps", false),
            None
        );
        assert_eq!(f.hits(), 2);
    }

    #[test]
    fn a_writes_only_fault_lets_dry_runs_through() {
        let f = Faults::default();
        let delay = FaultAction::Delay(std::time::Duration::from_secs(1));
        f.inject(
            1,
            FaultMatch::new("/deployments/web", Some("patch")).writes_only(),
            delay,
        );
        let path = "/apis/apps/v1/namespaces/default/deployments/web";
        assert_eq!(f.take("PATCH", path, true), None, "the dry-run is not held");
        assert_eq!(f.take("PATCH", path, false), Some(delay));
        assert_eq!(f.take("PATCH", path, false), None);
        assert_eq!(f.hits(), 1);
    }
}

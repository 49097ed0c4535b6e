//! The OAuth2 `state`: a random value handed to the browser twice, in a cookie and in the
//! authorize URL; the callback must bring both back, equal, within [`STATE_TTL`], once. That ties
//! the code GitHub returns to the browser that asked for it (no login CSRF) and stops a replayed
//! callback. Only redeemed states are remembered, until they would have expired anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::secret::{self, SecretString};

/// How long a login may take between leaving for GitHub and coming back.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// Why a callback's `state` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateRefused {
    /// No state cookie: the login was not started in this browser, or took too long.
    #[error("this login was not started in this browser, or it took too long; start again")]
    Missing,
    /// The state does not match this browser's.
    #[error("this login does not belong to this browser; start again")]
    Mismatch,
    /// The state is older than [`STATE_TTL`].
    #[error("this login took too long; start again")]
    Expired,
    /// The state was used already.
    #[error("this login was already used; start again")]
    Replayed,
}

/// The states redeemed and still within their lifetime.
#[derive(Default)]
pub struct States {
    redeemed: Mutex<HashMap<String, i64>>,
}

impl States {
    /// A new state: when it was issued (Unix seconds) and 32 random bytes, so its age is known
    /// without storing it.
    pub fn issue(&self) -> String {
        format!("{}.{}", now(), secret::random_token())
    }

    /// Accepts `presented` once, if it equals the browser's `cookie` and is not too old.
    pub fn redeem(&self, cookie: Option<&str>, presented: &str) -> Result<(), StateRefused> {
        let cookie = cookie
            .filter(|c| !c.is_empty())
            .ok_or(StateRefused::Missing)?;
        if !secret::ct_eq(&SecretString::from(cookie), presented) {
            return Err(StateRefused::Mismatch);
        }
        let issued: i64 = presented
            .split_once('.')
            .and_then(|(t, _)| t.parse().ok())
            .ok_or(StateRefused::Mismatch)?;
        let now = now();
        let ttl = STATE_TTL.as_secs() as i64;
        if now - issued > ttl || issued > now + 60 {
            return Err(StateRefused::Expired);
        }
        let mut redeemed = self.redeemed.lock().unwrap_or_else(|p| p.into_inner());
        redeemed.retain(|_, issued| now - *issued <= ttl);
        if redeemed.insert(presented.to_owned(), issued).is_some() {
            return Err(StateRefused::Replayed);
        }
        Ok(())
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_accepted_once_and_only_with_its_cookie() {
        let states = States::default();
        let state = states.issue();
        assert_eq!(states.redeem(None, &state), Err(StateRefused::Missing));
        assert_eq!(
            states.redeem(Some(&states.issue()), &state),
            Err(StateRefused::Mismatch)
        );
        assert_eq!(states.redeem(Some(&state), &state), Ok(()));
        assert_eq!(
            states.redeem(Some(&state), &state),
            Err(StateRefused::Replayed)
        );
    }

    #[test]
    fn an_old_or_malformed_state_is_refused() {
        let states = States::default();
        let old = format!("{}.{}", now() - 601, "ab".repeat(32));
        assert_eq!(states.redeem(Some(&old), &old), Err(StateRefused::Expired));
        assert_eq!(
            states.redeem(Some("no-time"), "no-time"),
            Err(StateRefused::Mismatch)
        );
    }
}

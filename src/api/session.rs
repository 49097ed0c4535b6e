//! Browser sessions: the login page trades the API token for an opaque random session id kept
//! here, in memory with an expiry, so the token itself never sits in a cookie, a URL or a log.
//! Each session carries a CSRF token the pages send back in `X-CSRF-Token` (double submit).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The cookie that carries the session id.
pub const COOKIE: &str = "capstan_session";
/// The header a cookie-authenticated state-changing request must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who a session belongs to and what it must present on writes.
#[derive(Clone, Debug)]
pub struct Session {
    /// The identity the session was opened for (today always the static admin).
    pub identity: String,
    /// The per-session token pages echo in [`CSRF_HEADER`].
    pub csrf: String,
    expires: Instant,
}

/// The live sessions of this process.
pub struct Sessions {
    ttl: Duration,
    live: Mutex<HashMap<String, Session>>,
}

/// At most this many sessions are kept; the oldest go first, so a login flood cannot grow memory.
const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes, hex: unguessable, and safe in a cookie or a meta tag.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Sessions {
    /// An empty store whose sessions last `ttl` from login.
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `identity`; returns its id (the cookie value) and the session.
    pub fn open(&self, identity: &str) -> (String, Session) {
        let id = random_token();
        let session = Session {
            identity: identity.to_owned(),
            csrf: random_token(),
            expires: Instant::now() + self.ttl,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            let oldest = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                live.remove(&k);
            }
        }
        live.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The unexpired session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends the session (logout); its cookie is worthless afterwards.
    pub fn close(&self, id: &str) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_or_expired_session_is_gone_and_ids_differ() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (a, sa) = sessions.open("admin");
        let (b, _) = sessions.open("admin");
        assert_ne!(a, b, "two logins share an id");
        assert_ne!(a, sa.csrf, "the CSRF token equals the session id");
        assert_eq!(sessions.get(&a).map(|s| s.csrf), Some(sa.csrf));
        sessions.close(&a);
        assert!(sessions.get(&a).is_none(), "a closed session still works");
        assert!(sessions.get(&b).is_some(), "closing one closed another");

        let expired = Sessions::new(Duration::ZERO);
        let (c, _) = expired.open("admin");
        assert!(expired.get(&c).is_none(), "an expired session still works");
    }
}

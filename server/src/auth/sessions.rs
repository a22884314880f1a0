//! Signed-in sessions (`--auth users`) and the per-address limit on login attempts.
//!
//! Sessions live in memory: restarting Lookout signs everyone out, which is the safe side.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine as _;

use super::scope::Scope;

/// Most sessions held at once; the one closest to expiry goes first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    pub scope: Scope,
    pub expires: Instant,
}

pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// A new session for `user`; its token goes into the cookie.
    pub fn open(&self, user: &str, scope: Scope) -> String {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(t, _)| t.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            token.clone(),
            Session {
                user: user.to_owned(),
                scope,
                expires: now + self.ttl,
            },
        );
        token
    }

    /// The session of a token, if it has not expired or been closed.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.map.lock().expect("sessions lock");
        match map.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.map.lock().expect("sessions lock").remove(token);
    }
}

/// At most `per_minute` login attempts per client address in any minute.
pub struct LoginLimiter {
    per_minute: u32,
    attempts: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Addresses tracked at once; beyond it the table is emptied (every address starts afresh),
/// which costs an attacker nothing they could not get by waiting a minute.
const MAX_ADDRESSES: usize = 10_000;

impl LoginLimiter {
    pub fn new(per_minute: u32) -> LoginLimiter {
        LoginLimiter {
            per_minute,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt from `addr`; `Err(wait)` if it is over the limit.
    pub fn attempt(&self, addr: IpAddr) -> Result<(), Duration> {
        const WINDOW: Duration = Duration::from_secs(60);
        let now = Instant::now();
        let mut all = self.attempts.lock().expect("limiter lock");
        if all.len() >= MAX_ADDRESSES && !all.contains_key(&addr) {
            all.clear();
        }
        let recent = all.entry(addr).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.per_minute as usize {
            let oldest = *recent.front().expect("over the limit: not empty");
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        recent.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_it_expires_or_is_closed() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let a = sessions.open("alice", Scope::All);
        let b = sessions.open("bob", Scope::All);
        assert_ne!(a, b);
        assert_eq!(sessions.get(&a).unwrap().user, "alice");
        sessions.close(&b);
        assert!(sessions.get(&b).is_none());
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get("made-up").is_none());
    }

    #[test]
    fn attempts_over_the_limit_wait() {
        let limiter = LoginLimiter::new(3);
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.attempt(here).is_ok());
        }
        let wait = limiter.attempt(here).unwrap_err();
        assert!(wait > Duration::from_secs(55), "{wait:?}");
        assert!(
            limiter.attempt(there).is_ok(),
            "another address is not held up"
        );
    }
}

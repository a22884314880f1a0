//! Signed-in sessions (`--auth users`) and the bounds on signing in: attempts per address
//! and per name, and password checks at once.
//!
//! Sessions live in memory: restarting Lookout signs everyone out, which is the safe side.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Login attempts in any minute: at most `per_address` from one client address (an IPv6
/// client by its /64, which one host usually holds whole), and at most `per_name` for one
/// user name, so that many addresses together cannot guess one password either.
///
/// The per-name limit would let anyone keep a user out by failing on their name. Addresses
/// that signed in as that user before are exempt from it (they still count against their own
/// address), so the user gets in from where they usually do while the name is held.
pub struct LoginLimiter {
    per_address: u32,
    per_name: u32,
    tables: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    names: HashMap<String, VecDeque<Instant>>,
    /// Addresses (as keyed) that signed in as each user, the latest first. Only names that
    /// signed in are here, so the users file bounds it.
    known: HashMap<String, VecDeque<IpAddr>>,
}

/// Which limit an attempt is over, and how long until it is not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverLimit {
    Address(Duration),
    Name(Duration),
}

impl OverLimit {
    pub fn wait(self) -> Duration {
        match self {
            OverLimit::Address(d) | OverLimit::Name(d) => d,
        }
    }
}

/// Addresses (and names) tracked at once. Beyond it, those idle for a minute go; if none
/// are, the table is emptied: an attacker needs this many addresses or names within a minute,
/// each passing the other limit and a password check, to get a fresh start.
const MAX_TRACKED: usize = 10_000;

/// Addresses remembered per user as having signed in.
const KNOWN_PER_NAME: usize = 8;

const WINDOW: Duration = Duration::from_secs(60);

/// What an address is counted as: IPv4 as it is, IPv6 by its /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl LoginLimiter {
    pub fn new(per_address: u32, per_name: u32) -> LoginLimiter {
        LoginLimiter {
            per_address,
            per_name,
            tables: Mutex::new(Tables::default()),
        }
    }

    /// Counts an attempt from `addr` to sign in as `name`. Names that are not user names at
    /// all (which never sign in) count against the address only.
    pub fn attempt(&self, addr: IpAddr, name: &str) -> Result<(), OverLimit> {
        let now = Instant::now();
        let key = address_key(addr);
        let mut t = self.tables.lock().expect("limiter lock");
        take(&mut t.addresses, key, self.per_address, now).map_err(OverLimit::Address)?;
        let known = t.known.get(name).is_some_and(|k| k.contains(&key));
        if known || !super::users::valid_name(name) {
            return Ok(());
        }
        take(&mut t.names, name.to_owned(), self.per_name, now).map_err(OverLimit::Name)
    }

    /// Remembers that `addr` signed in as `name`.
    pub fn signed_in(&self, addr: IpAddr, name: &str) {
        let key = address_key(addr);
        let mut t = self.tables.lock().expect("limiter lock");
        let known = t.known.entry(name.to_owned()).or_default();
        known.retain(|k| *k != key);
        known.push_front(key);
        known.truncate(KNOWN_PER_NAME);
    }
}

/// Counts one attempt under `key`, unless it already has `limit` in the last minute: then
/// how long until the oldest of them leaves the window.
fn take<K: std::hash::Hash + Eq>(
    table: &mut HashMap<K, VecDeque<Instant>>,
    key: K,
    limit: u32,
    now: Instant,
) -> Result<(), Duration> {
    if table.len() >= MAX_TRACKED && !table.contains_key(&key) {
        table.retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        if table.len() >= MAX_TRACKED {
            table.clear();
        }
    }
    let recent = table.entry(key).or_default();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= WINDOW)
    {
        recent.pop_front();
    }
    if recent.len() >= limit as usize {
        let oldest = *recent.front().expect("over the limit: not empty");
        return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
    }
    recent.push_back(now);
    Ok(())
}

/// Password checks running at once. An argon2id check holds about 19 MiB for its duration,
/// so a flood of logins could otherwise take all memory and every blocking thread.
pub struct PasswordChecks {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordChecks {
    pub fn new(at_once: u32, wait: Duration) -> PasswordChecks {
        PasswordChecks {
            permits: Arc::new(Semaphore::new(at_once as usize)),
            wait,
        }
    }

    /// The longest a sign-in waits for a place.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// A place to check one password, if one frees up in time. Keep it until the check ends.
    pub async fn permit(&self) -> Option<OwnedSemaphorePermit> {
        tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_it_expires_or_is_closed() {
        // Long enough that a test thread held up beside the others cannot see it expire early.
        let sessions = Sessions::new(Duration::from_millis(500));
        let a = sessions.open("alice", Scope::All);
        let b = sessions.open("bob", Scope::All);
        assert_ne!(a, b);
        assert_eq!(sessions.get(&a).unwrap().user, "alice");
        sessions.close(&b);
        assert!(sessions.get(&b).is_none());
        std::thread::sleep(Duration::from_millis(600));
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get("made-up").is_none());
    }

    #[test]
    fn attempts_over_the_limit_wait() {
        let limiter = LoginLimiter::new(3, 100);
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.attempt(here, "alice").is_ok());
        }
        let over = limiter.attempt(here, "alice").unwrap_err();
        assert!(matches!(over, OverLimit::Address(_)), "{over:?}");
        assert!(over.wait() > Duration::from_secs(55), "{over:?}");
        assert!(
            limiter.attempt(there, "alice").is_ok(),
            "another address is not held up"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64() {
        let limiter = LoginLimiter::new(2, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.attempt(a, "x").is_ok());
        assert!(limiter.attempt(b, "x").is_ok());
        assert!(
            limiter.attempt(a, "x").is_err(),
            "the same /64 is one client"
        );
        assert!(limiter.attempt(other, "x").is_ok(), "another /64 is not");
        assert_eq!(
            address_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap(),
            "an IPv4-mapped address is the IPv4 one"
        );
    }

    #[test]
    fn one_name_is_limited_across_addresses_but_not_where_it_signed_in_before() {
        let limiter = LoginLimiter::new(100, 3);
        let home: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.signed_in(home, "alice");
        for i in 0..3 {
            let bot: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            assert!(limiter.attempt(bot, "alice").is_ok());
        }
        let bot: IpAddr = "198.51.100.200".parse().unwrap();
        let over = limiter.attempt(bot, "alice").unwrap_err();
        assert!(matches!(over, OverLimit::Name(_)), "{over:?}");
        assert!(
            limiter.attempt(home, "alice").is_ok(),
            "alice still signs in from home"
        );
        assert!(
            limiter.attempt(bot, "bob").is_ok(),
            "another name is not held"
        );
        // An unknown name is held just the same, so the limit tells no one which names exist.
        for _ in 0..3 {
            limiter.attempt(bot, "nobody").unwrap();
        }
        assert!(limiter.attempt(bot, "nobody").is_err());
        // What is not a user name at all counts against the address only.
        for _ in 0..10 {
            assert!(limiter.attempt(bot, "not a name").is_ok());
        }
    }

    #[tokio::test]
    async fn password_checks_wait_a_bounded_time_for_a_place() {
        let checks = PasswordChecks::new(1, Duration::from_millis(50));
        let held = checks.permit().await.expect("a free place");
        let started = Instant::now();
        assert!(checks.permit().await.is_none(), "no place within the wait");
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        assert!(checks.permit().await.is_some(), "the place is free again");
    }
}

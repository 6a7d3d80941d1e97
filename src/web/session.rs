//! One-time login codes and the sessions they open, kept in memory.
//!
//! `aidmesh ui` asks the API (bearer token) for a code; the code is good for
//! [`CODE_TTL_MS`] and one use. Spending it opens a session: a random id in an
//! `HttpOnly` cookie, and a CSRF token the pages put in every form. Both tables are
//! bounded; the oldest entry goes first. A restarted node forgets every session, and
//! `aidmesh ui` logs in again.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::cookies::{self, Jar};

/// How long a login code stays good: 10 minutes.
pub const CODE_TTL_MS: u64 = 10 * 60 * 1000;
/// How long a session lives without use: 7 days.
pub const SESSION_IDLE_MS: u64 = 7 * 24 * 60 * 60 * 1000;
/// Most unspent login codes.
pub const MAX_CODES: usize = 16;
/// Most open sessions.
pub const MAX_SESSIONS: usize = 32;

/// An open session as a page sees it.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token every change must carry.
    pub csrf: String,
}

struct Open {
    csrf: String,
    last_used: u64,
}

#[derive(Default)]
struct Tables {
    /// Unspent codes and when each was made.
    codes: HashMap<String, u64>,
    /// Open sessions by cookie value.
    sessions: HashMap<String, Open>,
}

/// The node's login codes and sessions.
pub struct Sessions {
    /// The session cookie's name (it carries the port, see [`cookies`]).
    cookie: String,
    tables: Mutex<Tables>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Equal strings, compared in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Sessions {
    /// Empty tables for a node served on `port`.
    pub fn new(port: u16) -> Self {
        Self {
            cookie: format!("aidmesh_session_{port}"),
            tables: Mutex::new(Tables::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // The tables stay consistent across a panic (every change is one insert or
        // remove), so a poisoned lock is still usable.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// A new one-time login code.
    pub fn new_code(&self) -> String {
        self.new_code_at(super::now())
    }

    fn new_code_at(&self, now: u64) -> String {
        let code = random_hex();
        let mut t = self.lock();
        t.codes
            .retain(|_, made| now.saturating_sub(*made) < CODE_TTL_MS);
        while t.codes.len() >= MAX_CODES {
            let Some(oldest) = t
                .codes
                .iter()
                .min_by_key(|(_, m)| **m)
                .map(|(c, _)| c.clone())
            else {
                break;
            };
            t.codes.remove(&oldest);
        }
        t.codes.insert(code.clone(), now);
        code
    }

    /// Spends `code`: a fresh session's cookie value, or `None` for a code that is
    /// unknown, spent or expired.
    pub fn spend(&self, code: &str) -> Option<String> {
        self.spend_at(code, super::now())
    }

    fn spend_at(&self, code: &str, now: u64) -> Option<String> {
        let mut t = self.lock();
        let made = t.codes.remove(code)?;
        if now.saturating_sub(made) >= CODE_TTL_MS {
            return None;
        }
        t.sessions
            .retain(|_, s| now.saturating_sub(s.last_used) < SESSION_IDLE_MS);
        while t.sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = t
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            t.sessions.remove(&oldest);
        }
        let id = random_hex();
        t.sessions.insert(
            id.clone(),
            Open {
                csrf: random_hex(),
                last_used: now,
            },
        );
        Some(id)
    }

    /// The session of a cookie jar, if it holds a live one (and marks it used).
    pub fn from_jar(&self, jar: &Jar) -> Option<Session> {
        let id = jar.get(&self.cookie)?;
        self.get_at(id, super::now())
    }

    fn get_at(&self, id: &str, now: u64) -> Option<Session> {
        let mut t = self.lock();
        let open = t.sessions.get_mut(id)?;
        if now.saturating_sub(open.last_used) >= SESSION_IDLE_MS {
            t.sessions.remove(id);
            return None;
        }
        open.last_used = now;
        Some(Session {
            csrf: open.csrf.clone(),
        })
    }

    /// Ends the session of a cookie jar.
    pub fn end(&self, jar: &Jar) {
        if let Some(id) = jar.get(&self.cookie) {
            self.lock().sessions.remove(id);
        }
    }

    /// The `Set-Cookie` value that opens session `id`.
    pub fn set_cookie(&self, id: &str) -> String {
        cookies::session(&self.cookie, id, SESSION_IDLE_MS / 1000)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clear_cookie(&self) -> String {
        cookies::remove(&self.cookie)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_spent_once_and_expires() {
        let s = Sessions::new(7650);
        let code = s.new_code_at(1_000);
        let id = s
            .spend_at(&code, 2_000)
            .expect("fresh code opens a session");
        assert!(s.spend_at(&code, 2_001).is_none(), "a code is good once");
        assert!(s.get_at(&id, 3_000).is_some());
        let late = s.new_code_at(10_000);
        assert!(s.spend_at(&late, 10_000 + CODE_TTL_MS).is_none(), "expired");
        assert!(s.spend_at("not-a-code", 10_000).is_none());
    }

    #[test]
    fn tables_are_bounded() {
        let s = Sessions::new(1);
        let codes: Vec<_> = (0..MAX_CODES as u64 + 5)
            .map(|i| s.new_code_at(i))
            .collect();
        assert_eq!(s.lock().codes.len(), MAX_CODES);
        assert!(
            s.spend_at(&codes[0], 100).is_none(),
            "the oldest code was dropped"
        );
        for i in 0..MAX_SESSIONS as u64 + 3 {
            let c = s.new_code_at(200 + i);
            s.spend_at(&c, 200 + i).unwrap();
        }
        assert_eq!(s.lock().sessions.len(), MAX_SESSIONS);
    }

    #[test]
    fn idle_sessions_end() {
        let s = Sessions::new(1);
        let c = s.new_code_at(0);
        let id = s.spend_at(&c, 0).unwrap();
        assert!(s.get_at(&id, SESSION_IDLE_MS).is_none());
        assert!(s.get_at(&id, 1).is_none(), "an ended session stays ended");
    }
}

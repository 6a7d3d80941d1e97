//! Reading the `Cookie` header and writing `Set-Cookie` values.
//!
//! Cookies are scoped to a host, not to a port, so two nodes on one machine would
//! overwrite each other's cookie: the session cookie's name carries the port.

use axum::http::HeaderMap;

/// The cookies a request carries, by name (the first value of a repeated name wins).
#[derive(Debug, Default)]
pub struct Jar {
    pairs: Vec<(String, String)>,
}

/// Most cookies read from one request; a longer header is someone else's problem.
const MAX_COOKIES: usize = 64;

impl Jar {
    /// Parses every `Cookie` header.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut pairs = Vec::new();
        for value in headers.get_all(axum::http::header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for part in text.split(';') {
                if pairs.len() >= MAX_COOKIES {
                    break;
                }
                if let Some((k, v)) = part.trim().split_once('=') {
                    pairs.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
        }
        Self { pairs }
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A `Set-Cookie` value for a session: `HttpOnly` (no script reads it),
/// `SameSite=Strict` (no other site's page sends it), the whole site, `max_age` seconds.
pub fn session(name: &str, value: &str, max_age_secs: u64) -> String {
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}")
}

/// A `Set-Cookie` value that removes cookie `name`.
pub fn remove(name: &str) -> String {
    format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A `Set-Cookie` value for a harmless preference (the language), kept for a year.
pub fn preference(name: &str, value: &str) -> String {
    format!("{name}={value}; Path=/; SameSite=Strict; Max-Age=31536000")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_flags() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            "a=1; aidmesh_session_7650=abc ; b=\"q\"".parse().unwrap(),
        );
        let jar = Jar::from_headers(&h);
        assert_eq!(jar.get("aidmesh_session_7650"), Some("abc"));
        assert_eq!(jar.get("b"), Some("q"));
        assert_eq!(jar.get("c"), None);
        let c = session("s", "v", 60);
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }
}

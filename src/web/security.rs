//! The `Host` check against DNS rebinding, and the security headers every page gets.
//!
//! A page on `evil.example` that rebinds its name to 127.0.0.1 reaches the node with
//! `Host: evil.example:7650`. Only `localhost` and IP literals are accepted as hosts
//! (a rebinding attack needs a name it controls), and only with the API's own port.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;

/// The content security policy: nothing from anywhere but this page; no inline script
/// or style; no framing; forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
base-uri 'none'";

/// Whether `host` (a `Host` header value) names the node served on `addr`.
pub fn host_ok(host: &str, addr: SocketAddr) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    if port != Some(addr.port()) {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    literal.parse::<IpAddr>().is_ok()
}

/// The middleware: a request whose `Host` does not name this node gets a 403 and
/// nothing else.
pub async fn check_host(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let ok = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| host_ok(h, state.addr()));
    if !ok {
        tracing::debug!(host = ?request.headers().get(header::HOST), "web request with a foreign Host refused");
        return (
            StatusCode::FORBIDDEN,
            "This address does not belong to this aidmesh node (Host refused).",
        )
            .into_response();
    }
    next.run(request).await
}

/// Adds the security headers to a response's headers.
pub fn add_headers(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // Not `no-referrer`: under it browsers send `Origin: null` with form posts, and the
    // CSRF guard needs the real origin. `same-origin` still keeps URLs (and login
    // codes) from other sites.
    set(h, "referrer-policy", "same-origin");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "geolocation=(self), camera=(), microphone=(), interest-cohort=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show private data: never kept by a cache.
        set(h, "cache-control", "no-store");
    }
}

/// The middleware that adds [`add_headers`] to every response.
pub async fn headers(request: Request, next: Next) -> Response {
    let mut r = next.run(request).await;
    add_headers(r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_port_and_no_names_but_localhost() {
        let a: SocketAddr = "127.0.0.1:7650".parse().unwrap();
        assert!(host_ok("127.0.0.1:7650", a));
        assert!(host_ok("localhost:7650", a));
        assert!(host_ok("LOCALHOST:7650", a));
        assert!(host_ok("[::1]:7650", a));
        assert!(!host_ok("127.0.0.1:7651", a));
        assert!(!host_ok("evil.example:7650", a));
        assert!(!host_ok("localhost.evil.example:7650", a));
        assert!(!host_ok("127.0.0.1", a));
        assert!(!host_ok("[::1]", a));
        assert!(!host_ok("", a));
        let p: SocketAddr = "0.0.0.0:80".parse().unwrap();
        assert!(host_ok("192.168.1.5", p));
        assert!(!host_ok("nas.local", p));
    }
}

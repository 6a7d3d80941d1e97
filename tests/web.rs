//! The web page through a real node and its real API server on loopback: login with a
//! one-time code, pages that show nothing without a session, the Host and CSRF
//! checks, the new post form and its errors, and the live stream.

mod common;

use std::net::SocketAddr;

use aidmesh::api::json::UiLoginJson;
use aidmesh::proto::{Category, Kind};
use aidmesh::{DataDir, Draft, NodeHandle};
use common::{spawn_node, TIMEOUT};
use libp2p::futures::StreamExt;
use reqwest::header;
use reqwest::redirect::Policy;

struct Web {
    node: NodeHandle,
    server: Option<aidmesh::api::ApiServer>,
    addr: SocketAddr,
    token: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Web {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let node = spawn_node(dir.path(), &[], &["commons"]).await;
        let data_dir = DataDir::resolve(Some(dir.path().to_path_buf())).unwrap();
        let server = aidmesh::api::serve(
            node.clone(),
            "127.0.0.1:0".parse().unwrap(),
            false,
            &data_dir,
        )
        .await
        .unwrap();
        let addr = server.addr();
        let token = std::fs::read_to_string(data_dir.api_token()).unwrap();
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        Web {
            node,
            server: Some(server),
            addr,
            token,
            http,
            dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn login_url(&self) -> String {
        let r = self
            .http
            .post(self.url("/api/v1/ui/login"))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<UiLoginJson>().await.unwrap().url
    }

    /// Logs in; returns the `Cookie` header value.
    async fn login(&self) -> String {
        let url = self.login_url().await;
        let r = self.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        set.split(';').next().unwrap().to_string()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut req = self.http.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// The CSRF token on a page.
    async fn csrf(&self, cookie: &str) -> String {
        let (_, html) = self.get("/new", Some(cookie)).await;
        let at = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
        html[at..at + 64].to_string()
    }

    async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        origin: Option<&str>,
        form: &[(&str, &str)],
    ) -> (u16, String) {
        let mut req = self
            .http
            .post(self.url(path))
            .header(header::COOKIE, cookie)
            .form(form);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
        self.node.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn without_a_session_pages_say_how_to_log_in_and_show_nothing() {
    let w = Web::start().await;
    w.node
        .publish(Draft::new(
            Kind::Offer,
            Category::Goods,
            "Secret spare bike",
        ))
        .await
        .unwrap();
    for path in ["/", "/mine", "/alerts", "/circles", "/status", "/new"] {
        let (status, html) = w.get(path, None).await;
        assert_eq!(status, 401, "{path}");
        assert!(html.contains("aidmesh ui"), "{path}: {html}");
        assert!(!html.contains("Secret spare bike"), "{path} leaks data");
    }
    // A forged cookie is no session either.
    let (status, _) = w
        .get("/", Some(&format!("aidmesh_session_{}=00", w.addr.port())))
        .await;
    assert_eq!(status, 401);
    w.stop().await;
}

#[tokio::test]
async fn a_login_code_opens_one_session_once() {
    let w = Web::start().await;
    w.node
        .publish(Draft::new(Kind::Offer, Category::Goods, "Spare bike"))
        .await
        .unwrap();
    let url = w.login_url().await;
    assert!(
        url.starts_with(&format!("http://{}/login?code=", w.addr)),
        "{url}"
    );
    let r = w.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, html) = w.get("/", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Spare bike"), "{html}");
    // The code is spent.
    let r = w.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    // Without the bearer token no code is made.
    let r = w.http.post(w.url("/api/v1/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    w.stop().await;
}

#[tokio::test]
async fn pages_carry_security_headers_and_the_json_api_is_unchanged() {
    let w = Web::start().await;
    let cookie = w.login().await;
    let r = w
        .http
        .get(w.url("/"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let r = w
        .http
        .get(w.url("/api/v1/status"))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["peer_id"].is_string());
    let r = w
        .http
        .get(w.url("/api/v1/nothing"))
        .bearer_auth(&w.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "not_found"
    );
    let (status, html) = w.get("/no/such/page", None).await;
    assert_eq!(status, 404);
    assert!(html.contains("<html"), "{html}");
    w.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_refused() {
    let w = Web::start().await;
    let cookie = w.login().await;
    for host in [
        format!("evil.example:{}", w.addr.port()),
        "127.0.0.1:1".to_string(),
    ] {
        let r = w
            .http
            .get(w.url("/"))
            .header(header::HOST, &host)
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{host}");
        assert!(!r.text().await.unwrap().contains("Board"));
    }
    let r = w
        .http
        .get(w.url("/"))
        .header(header::HOST, format!("localhost:{}", w.addr.port()))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    w.stop().await;
}

#[tokio::test]
async fn changes_need_this_origin_and_the_csrf_token() {
    let w = Web::start().await;
    let cookie = w.login().await;
    let token = w.csrf(&cookie).await;
    let me = w.origin();
    let form = |csrf: &str| {
        vec![
            ("_csrf", csrf.to_string()),
            ("kind", "offer".to_string()),
            ("title", "Soup for ten".to_string()),
            ("category", "food".to_string()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| {
        f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };
    for (origin, csrf, why) in [
        (None, token.as_str(), "no Origin"),
        (
            Some("http://evil.example"),
            token.as_str(),
            "another Origin",
        ),
        (Some(me.as_str()), "", "no token"),
        (Some(me.as_str()), &"0".repeat(64), "a wrong token"),
    ] {
        let f = as_refs(&form(csrf));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _) = w.post_form("/new", &cookie, origin, &f).await;
        assert_eq!(status, 403, "{why}");
    }
    assert_eq!(w.node.store().len(), 0, "nothing was posted");
    // Without a session, even with a token.
    let (status, _) = w
        .post_form(
            "/new",
            "x=y",
            Some(&me),
            &[("_csrf", &token), ("kind", "offer"), ("title", "x")],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = w
        .post_form(
            "/new",
            &cookie,
            Some(&me),
            &[
                ("_csrf", &token),
                ("kind", "offer"),
                ("title", "Soup for ten"),
                ("category", "food"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(w.node.store().len(), 1);
    w.stop().await;
}

#[tokio::test]
async fn the_form_shows_the_nodes_error_beside_its_field_and_posts_nothing() {
    let w = Web::start().await;
    let cookie = w.login().await;
    let token = w.csrf(&cookie).await;
    let me = w.origin();
    let (status, html) = w
        .post_form(
            "/new",
            &cookie,
            Some(&me),
            &[
                ("_csrf", &token),
                ("kind", "offer"),
                ("title", ""),
                ("body", "kept text"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    let title_at = html.find("for=\"title\"").unwrap();
    let error_at = html
        .find("id=\"title-error\"")
        .expect("an error for the title");
    let next_field = html.find("for=\"body\"").unwrap();
    assert!(
        title_at < error_at && error_at < next_field,
        "the error sits with Title"
    );
    assert!(html.contains("kept text"), "what was typed stays");
    let (status, html) = w
        .post_form(
            "/new",
            &cookie,
            Some(&me),
            &[
                ("_csrf", &token),
                ("kind", "offer"),
                ("title", "Chairs"),
                ("tags", "Bad Tag!"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"tags-error\""), "{html}");
    let (status, html) = w
        .post_form(
            "/new",
            &cookie,
            Some(&me),
            &[
                ("_csrf", &token),
                ("kind", "offer"),
                ("title", "Chairs"),
                ("quantity", "many"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"quantity-error\""), "{html}");
    assert_eq!(w.node.store().len(), 0);
    w.stop().await;
}

#[tokio::test]
async fn spanish_by_accept_language_and_by_choice() {
    let w = Web::start().await;
    let cookie = w.login().await;
    let r = w
        .http
        .get(w.url("/"))
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT_LANGUAGE, "es-ES,es;q=0.9")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("lang=\"es\"") && html.contains("Tablón"),
        "{html}"
    );
    let r = w
        .http
        .get(w.url("/?lang=en"))
        .header(header::COOKIE, &cookie)
        .header(header::ACCEPT_LANGUAGE, "es")
        .send()
        .await
        .unwrap();
    assert!(r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .starts_with("aidmesh_lang=en"));
    assert!(r.text().await.unwrap().contains(">Board<"));
    w.stop().await;
}

#[tokio::test]
async fn the_live_stream_sends_new_posts_that_pass_the_filters() {
    let w = Web::start().await;
    let cookie = w.login().await;
    let (status, _) = w.get("/live?view=board", None).await;
    assert_eq!(status, 401);
    let r = w
        .http
        .get(w.url("/live?view=board&kind=offer"))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    w.node
        .publish(Draft::new(Kind::Request, Category::Food, "Need soup"))
        .await
        .unwrap();
    w.node
        .publish(Draft::new(Kind::Offer, Category::Goods, "Free ladder"))
        .await
        .unwrap();
    let mut seen = String::new();
    tokio::time::timeout(TIMEOUT, async {
        while !seen.contains("Free ladder") {
            let chunk = body.next().await.expect("stream stays open").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the offer arrives on the stream");
    assert!(seen.contains("event: post"), "{seen}");
    assert!(
        !seen.contains("Need soup"),
        "a request does not pass kind=offer"
    );
    w.stop().await;
}

#[tokio::test]
async fn aidmesh_ui_prints_a_login_link_last() {
    let w = Web::start().await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aidmesh"))
        .arg("--data-dir")
        .arg(w.dir.path())
        .arg("ui")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("AIDMESH_DATA_DIR")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let url = stdout.trim().lines().last().unwrap().trim();
    assert!(
        url.starts_with(&format!("http://{}/login?code=", w.addr)),
        "{stdout}"
    );
    let r = w.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().contains_key(header::SET_COOKIE));
    w.stop().await;
}

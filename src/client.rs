//! A typed client for a running node's local API, for the CLI and for scripts: it
//! finds the node through `<data-dir>/api.addr` and `api.token`.

use std::time::Duration;

use libp2p::futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::alerts::AlertFilter;
use crate::api::json::{
    AlertJson, BlockJson, DraftJson, EditJson, ErrorBody, MatchJson, PostJson, PostMatchesJson,
};
use crate::DataDir;

/// Client failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No node runs for this data dir (no address file, or nothing answers there).
    #[error("no aidmesh node is running for data dir {0}; start one with `aidmesh run` (with the same --data-dir)")]
    NotRunning(String),
    /// The API answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Message.
        message: String,
        /// Field at fault.
        field: Option<String>,
    },
    /// Transport failure or an unexpected answer.
    #[error("talking to the node failed: {0}")]
    Http(String),
}

/// A client for one node's API.
#[derive(Clone)]
pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
    data_dir: String,
}

impl ApiClient {
    /// The client for the node running on `data_dir`.
    pub fn from_data_dir(data_dir: &DataDir) -> Result<Self, Error> {
        let shown = data_dir.path().display().to_string();
        let addr = std::fs::read_to_string(data_dir.api_addr())
            .map_err(|_| Error::NotRunning(shown.clone()))?;
        let token = std::fs::read_to_string(data_dir.api_token())
            .map_err(|_| Error::NotRunning(shown.clone()))?;
        Self::new(addr.trim(), token.trim(), shown)
    }

    /// A client for the API at `addr` (`host:port`) with `token`.
    pub fn new(addr: &str, token: &str, data_dir: String) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Http(e.to_string()))?;
        Ok(Self {
            base: format!("http://{addr}/api/v1"),
            token: token.to_string(),
            http,
            data_dir,
        })
    }

    fn transport(&self, e: reqwest::Error) -> Error {
        if e.is_connect() {
            Error::NotRunning(self.data_dir.clone())
        } else {
            Error::Http(e.to_string())
        }
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, Error> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(b) => Error::Api {
                    status: status.as_u16(),
                    code: b.error.code,
                    message: b.error.message,
                    field: b.error.field,
                },
                Err(_) => Error::Http(format!("HTTP {status}")),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Http(format!("bad answer: {e}")))
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, Error> {
        self.send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await
    }

    async fn post_json<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// `POST posts/{id}/replies`: answers a post privately; the answer names the
    /// conversation.
    pub async fn reply(&self, post: &str, text: &str) -> Result<serde_json::Value, Error> {
        self.post_json(
            &format!("/posts/{post}/replies"),
            &serde_json::json!({ "text": text }),
        )
        .await
    }

    /// `GET conversations`: conversations and requests.
    pub async fn inbox(&self) -> Result<serde_json::Value, Error> {
        self.get("/conversations", &[]).await
    }

    /// `GET conversations/{id}`: a conversation and its messages (marks them read).
    pub async fn thread(&self, id: &str) -> Result<serde_json::Value, Error> {
        self.get(&format!("/conversations/{id}"), &[]).await
    }

    /// `POST conversations/{id}/messages`: writes in a conversation.
    pub async fn send_message(
        &self,
        id: &str,
        kind: &str,
        text: &str,
    ) -> Result<serde_json::Value, Error> {
        self.post_json(
            &format!("/conversations/{id}/messages"),
            &serde_json::json!({ "kind": kind, "text": text }),
        )
        .await
    }

    /// `GET status`.
    pub async fn status(&self) -> Result<serde_json::Value, Error> {
        self.get("/status", &[]).await
    }

    /// `GET peers`.
    pub async fn peers(&self) -> Result<serde_json::Value, Error> {
        self.get("/peers", &[]).await
    }

    /// `GET posts` with filters as URL parameters (see the README).
    pub async fn list(&self, filters: &[(String, String)]) -> Result<Vec<PostJson>, Error> {
        self.get("/posts", filters).await
    }

    /// `GET posts/{id}`.
    pub async fn show(&self, id: &str) -> Result<PostJson, Error> {
        self.get(&format!("/posts/{id}"), &[]).await
    }

    /// `POST posts`.
    pub async fn publish(&self, draft: &DraftJson) -> Result<PostJson, Error> {
        self.post_json("/posts", draft).await
    }

    /// `PUT posts/{id}`.
    pub async fn edit(&self, id: &str, edit: &EditJson) -> Result<PostJson, Error> {
        self.send(
            self.http
                .put(format!("{}/posts/{id}", self.base))
                .json(edit),
        )
        .await
    }

    /// `POST posts/{id}/withdraw`.
    pub async fn withdraw(&self, id: &str) -> Result<PostJson, Error> {
        self.post_json(&format!("/posts/{id}/withdraw"), &()).await
    }

    /// `POST posts/{id}/fulfil`.
    pub async fn fulfil(&self, id: &str) -> Result<PostJson, Error> {
        self.post_json(&format!("/posts/{id}/fulfil"), &()).await
    }

    /// `POST posts/{id}/reopen`.
    pub async fn reopen(&self, id: &str) -> Result<PostJson, Error> {
        self.post_json(&format!("/posts/{id}/reopen"), &()).await
    }

    /// `POST blocks`.
    pub async fn block(&self, author: &str) -> Result<serde_json::Value, Error> {
        self.post_json(
            "/blocks",
            &BlockJson {
                author: author.into(),
            },
        )
        .await
    }

    /// `DELETE blocks/{author}`.
    pub async fn unblock(&self, author: &str) -> Result<serde_json::Value, Error> {
        self.send(self.http.delete(format!("{}/blocks/{author}", self.base)))
            .await
    }

    /// `GET matches`: this node's open posts, each with its best `limit` matches.
    pub async fn matches(&self, limit: usize) -> Result<Vec<PostMatchesJson>, Error> {
        self.get("/matches", &[("limit".into(), limit.to_string())])
            .await
    }

    /// `GET posts/{id}/matches`: the best `limit` matches for one post.
    pub async fn post_matches(&self, id: &str, limit: usize) -> Result<Vec<MatchJson>, Error> {
        self.get(
            &format!("/posts/{id}/matches"),
            &[("limit".into(), limit.to_string())],
        )
        .await
    }

    /// `GET alerts`.
    pub async fn alerts(&self) -> Result<Vec<AlertJson>, Error> {
        self.get("/alerts", &[]).await
    }

    /// `POST alerts`: saves a standing alert.
    pub async fn add_alert(&self, filter: &AlertFilter) -> Result<AlertJson, Error> {
        self.post_json("/alerts", filter).await
    }

    /// `DELETE alerts/{id}`.
    pub async fn remove_alert(&self, id: &str) -> Result<AlertJson, Error> {
        self.send(self.http.delete(format!("{}/alerts/{id}", self.base)))
            .await
    }

    /// A bearer-authenticated `GET` whose body the caller reads itself.
    async fn get_raw(&self, path: &str) -> Result<reqwest::Response, Error> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if !resp.status().is_success() {
            return Err(Error::Http(format!("HTTP {}", resp.status())));
        }
        Ok(resp)
    }

    /// `GET export`: JSON lines of signed posts.
    pub async fn export(&self) -> Result<String, Error> {
        let resp = self.get_raw("/export").await?;
        resp.text().await.map_err(|e| self.transport(e))
    }

    /// `POST import` of JSON lines as `export` writes them.
    pub async fn import(&self, lines: String) -> Result<crate::api::json::ImportReport, Error> {
        self.send(self.http.post(format!("{}/import", self.base)).body(lines))
            .await
    }

    /// `POST ui/login`: a one-time login URL for the node's web page.
    pub async fn ui_login(&self) -> Result<crate::api::json::UiLoginJson, Error> {
        self.post_json("/ui/login", &serde_json::json!({})).await
    }

    /// `GET circles`: the circles the node is in.
    pub async fn circles(&self) -> Result<Vec<crate::circles::CircleInfo>, Error> {
        self.get("/circles", &[]).await
    }

    /// `POST circles`: joins a circle (the node saves it in `config.toml`).
    pub async fn join_circle(
        &self,
        name: &str,
    ) -> Result<crate::api::json::CircleJoinedJson, Error> {
        self.post_json(
            "/circles",
            &crate::api::json::CircleJoinJson {
                name: name.to_string(),
            },
        )
        .await
    }

    /// `DELETE circles/{name}`: leaves a circle and deletes its posts on the node.
    pub async fn leave_circle(&self, name: &str) -> Result<crate::circles::Left, Error> {
        let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        self.send(self.http.delete(format!("{}/circles/{name}", self.base)))
            .await
    }

    /// `POST circles/closed`: founds a closed circle; the answer names its full name.
    pub async fn create_closed_circle(
        &self,
        name: &str,
    ) -> Result<crate::api::membrane::ChangedJson, Error> {
        self.post_json("/circles/closed", &serde_json::json!({ "name": name }))
            .await
    }

    /// `GET circles/{name}/members` (or `/moderators`).
    pub async fn circle_members(
        &self,
        name: &str,
        moderators: bool,
    ) -> Result<crate::circles::Members, Error> {
        let name = path_part(name);
        let what = if moderators { "moderators" } else { "members" };
        self.get(&format!("/circles/{name}/{what}"), &[]).await
    }

    /// `POST circles/{name}/{members|moderators|blocklist}`: admits a peer, names a
    /// moderator, or adds a peer to this node's blocklist in the circle.
    pub async fn circle_peer(
        &self,
        name: &str,
        what: &str,
        peer: &str,
    ) -> Result<crate::api::membrane::ChangedJson, Error> {
        let name = path_part(name);
        self.post_json(
            &format!("/circles/{name}/{what}"),
            &serde_json::json!({ "peer_id": peer }),
        )
        .await
    }

    /// `DELETE circles/{name}/members/{peer}`: removes a member (with its invitees
    /// admitted at or after `since`, when given).
    pub async fn circle_remove(
        &self,
        name: &str,
        peer: &str,
        invitees_since: Option<u64>,
    ) -> Result<crate::api::membrane::ChangedJson, Error> {
        let (name, peer) = (path_part(name), path_part(peer));
        let mut url = format!("{}/circles/{name}/members/{peer}", self.base);
        if let Some(since) = invitees_since {
            url.push_str(&format!("?with_invitees=true&since={since}"));
        }
        self.send(self.http.delete(url)).await
    }

    /// `POST posts/{id}/hide`.
    pub async fn hide(&self, id: &str) -> Result<crate::api::membrane::ChangedJson, Error> {
        let id = path_part(id);
        self.post_json(&format!("/posts/{id}/hide"), &serde_json::json!({}))
            .await
    }

    /// `POST moderation/follow` or `DELETE moderation/follow/{peer}`.
    pub async fn follow_moderation(
        &self,
        peer: &str,
        follow: bool,
    ) -> Result<crate::api::membrane::FollowingJson, Error> {
        if follow {
            self.post_json(
                "/moderation/follow",
                &serde_json::json!({ "peer_id": peer }),
            )
            .await
        } else {
            let peer = path_part(peer);
            self.send(
                self.http
                    .delete(format!("{}/moderation/follow/{peer}", self.base)),
            )
            .await
        }
    }

    /// `GET invite`: a code for `circle` (the node's first circle if `None`).
    pub async fn invite(
        &self,
        circle: Option<&str>,
    ) -> Result<crate::api::json::InviteJson, Error> {
        let query: Vec<(String, String)> = circle
            .map(|c| ("circle".to_string(), c.to_string()))
            .into_iter()
            .collect();
        self.get("/invite", &query).await
    }

    /// `POST join`: the node joins an invite's circle and dials its peers now.
    pub async fn join(&self, code: &str) -> Result<crate::api::json::JoinedJson, Error> {
        self.post_json(
            "/join",
            &crate::api::json::JoinJson {
                code: code.to_string(),
            },
        )
        .await
    }

    /// `GET blocks`.
    pub async fn blocks(&self) -> Result<Vec<String>, Error> {
        self.get("/blocks", &[]).await
    }

    /// `GET events`: a stream of `(event name, JSON data)` until the node stops.
    pub async fn events(
        &self,
    ) -> Result<impl Stream<Item = Result<(String, serde_json::Value), Error>>, Error> {
        let resp = self.get_raw("/events").await?;
        let mut buf = String::new();
        let stream = resp.bytes_stream().flat_map(move |chunk| {
            let mut out = Vec::new();
            match chunk {
                Err(e) => out.push(Err(Error::Http(e.to_string()))),
                Ok(bytes) => {
                    buf.push_str(&String::from_utf8_lossy(&bytes));
                    // SSE events end with a blank line.
                    while let Some(end) = buf.find("\n\n") {
                        let block: String = buf.drain(..end + 2).collect();
                        let mut name = String::from("message");
                        let mut data = String::new();
                        for line in block.lines() {
                            if let Some(v) = line.strip_prefix("event:") {
                                name = v.trim().to_string();
                            } else if let Some(v) = line.strip_prefix("data:") {
                                data.push_str(v.trim_start());
                            }
                        }
                        if data.is_empty() {
                            continue; // keep-alive comment
                        }
                        out.push(
                            serde_json::from_str(&data)
                                .map(|v| (name, v))
                                .map_err(|e| Error::Http(format!("bad event: {e}"))),
                        );
                    }
                }
            }
            libp2p::futures::stream::iter(out)
        });
        Ok(stream)
    }
}

/// A value as one URL path segment.
fn path_part(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

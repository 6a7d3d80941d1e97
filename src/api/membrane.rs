//! Closed circles and followed moderation over the local API:
//! `POST /circles/closed`, `/circles/{name}/members`, `/circles/{name}/moderators`,
//! `/circles/{name}/blocklist`, `POST /posts/{id}/hide` and `/moderation/follow`.
//! A circle is named by its full name (`name~id`) or an unambiguous short form.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::Json;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use super::{id_of, parse, ApiError, ApiResult, AppState};
use crate::circles::Members;

/// `POST /circles/closed`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateJson {
    /// The name (1-48 characters a-z, 0-9 and -).
    pub name: String,
}

/// A peer named in a body.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerJson {
    /// Its peer id.
    pub peer_id: String,
}

/// `DELETE /circles/{name}/members/{peer}` options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    /// Also remove everyone the member admitted (`true`), from `since` on.
    #[serde(default)]
    pub with_invitees: bool,
    /// With `with_invitees`: only those admitted at or after this time (ms since
    /// the epoch); default all.
    #[serde(default)]
    pub since: Option<u64>,
}

/// What a membership change did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangedJson {
    /// The circle's full name.
    pub circle: String,
    /// Members removed (for a removal).
    #[serde(default)]
    pub removed: Vec<String>,
}

/// The peers whose moderation is followed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowingJson {
    /// Their peer ids.
    pub following: Vec<String>,
    /// Whether the last request changed anything.
    pub changed: bool,
}

fn peer(v: &str) -> Result<PeerId, ApiError> {
    parse::<PeerId>("peer_id", v)
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(t)| t).map_err(ApiError::from)
}

/// `POST /circles/closed {"name": "riverside"}`: founds a closed circle and joins it.
pub(super) async fn create(
    State(s): State<AppState>,
    b: Result<Json<CreateJson>, JsonRejection>,
) -> Result<(StatusCode, Json<ChangedJson>), ApiError> {
    let b = body(b)?;
    let circle = s.node.create_closed_circle(&b.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(ChangedJson {
            circle,
            removed: Vec::new(),
        }),
    ))
}

/// `GET /circles/{name}/members`.
pub(super) async fn members(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Members> {
    let circle = s.node.resolve_circle(&name)?;
    Ok(Json(s.node.circle_members(&circle)?))
}

/// `POST /circles/{name}/members {"peer_id": "..."}`: admits a peer.
pub(super) async fn admit(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<PeerJson>, JsonRejection>,
) -> ApiResult<ChangedJson> {
    let circle = s.node.resolve_circle(&name)?;
    let p = peer(&body(b)?.peer_id)?;
    s.node.circle_admit(&circle, &p).await?;
    Ok(Json(ChangedJson {
        circle,
        removed: Vec::new(),
    }))
}

/// `DELETE /circles/{name}/members/{peer}?with_invitees=true&since=MS`: removes a
/// member (and its invitees).
pub(super) async fn remove(
    State(s): State<AppState>,
    Path((name, p)): Path<(String, String)>,
    QueryParams(q): QueryParams<RemoveParams>,
) -> ApiResult<ChangedJson> {
    let circle = s.node.resolve_circle(&name)?;
    let p = peer(&p)?;
    let since = q.with_invitees.then(|| q.since.unwrap_or(0));
    let removed = s.node.circle_remove(&circle, &p, since).await?;
    Ok(Json(ChangedJson { circle, removed }))
}

/// `GET /circles/{name}/moderators`: the founder and the moderators.
pub(super) async fn moderators(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Members> {
    let circle = s.node.resolve_circle(&name)?;
    let mut m = s.node.circle_members(&circle)?;
    m.members.retain(|m| m.role != "member");
    Ok(Json(m))
}

/// `POST /circles/{name}/moderators {"peer_id": "..."}`: the founder names a
/// moderator.
pub(super) async fn grant(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<PeerJson>, JsonRejection>,
) -> ApiResult<ChangedJson> {
    let circle = s.node.resolve_circle(&name)?;
    let p = peer(&body(b)?.peer_id)?;
    s.node.circle_grant_moderator(&circle, &p).await?;
    Ok(Json(ChangedJson {
        circle,
        removed: Vec::new(),
    }))
}

/// `POST /circles/{name}/blocklist {"peer_id": "..."}`: adds a peer to this node's
/// signed blocklist in the circle.
pub(super) async fn block(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<PeerJson>, JsonRejection>,
) -> ApiResult<ChangedJson> {
    let circle = s.node.resolve_circle(&name)?;
    let p = peer(&body(b)?.peer_id)?;
    s.node.moderation_block(&circle, &p).await?;
    Ok(Json(ChangedJson {
        circle,
        removed: Vec::new(),
    }))
}

/// `POST /posts/{id}/hide`: a signed hide of a post, for whoever follows this node.
pub(super) async fn hide(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<ChangedJson> {
    let id = id_of(&s, &id)?;
    let record = s.node.hide(&id).await?;
    let circle = record.decode_record().map(|r| r.circle).unwrap_or_default();
    Ok(Json(ChangedJson {
        circle,
        removed: Vec::new(),
    }))
}

fn following(s: &AppState, changed: bool) -> FollowingJson {
    FollowingJson {
        following: s
            .node
            .followed_moderation()
            .iter()
            .map(|p| p.to_string())
            .collect(),
        changed,
    }
}

/// `GET /moderation/follow`.
pub(super) async fn list_follow(State(s): State<AppState>) -> ApiResult<FollowingJson> {
    Ok(Json(following(&s, false)))
}

/// `POST /moderation/follow {"peer_id": "..."}`: follows a key's moderation (saved in
/// `config.toml`).
pub(super) async fn follow(
    State(s): State<AppState>,
    b: Result<Json<PeerJson>, JsonRejection>,
) -> ApiResult<FollowingJson> {
    let p = peer(&body(b)?.peer_id)?;
    let changed = s.node.follow_moderation(&p, true).await?;
    Ok(Json(following(&s, changed)))
}

/// `DELETE /moderation/follow/{peer}`.
pub(super) async fn unfollow(
    State(s): State<AppState>,
    Path(p): Path<String>,
) -> ApiResult<FollowingJson> {
    let p = peer(&p)?;
    let changed = s.node.follow_moderation(&p, false).await?;
    Ok(Json(following(&s, changed)))
}

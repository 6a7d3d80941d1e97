//! Private replies over the local API: replying to a post, the inbox, a thread, and
//! writing in a conversation. Conversation ids accept a unique prefix of at least 8
//! hex characters, like the CLI.

use aidmesh_proto::message::MessageKind;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query as QueryParams, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{id_of, parse, ApiError, ApiResult, AppState};
use crate::messages::{Inbox, Thread};
use crate::node::Sent;

/// `POST /posts/{id}/replies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyJson {
    /// The words (1..=2000 bytes).
    pub text: String,
}

/// `POST /conversations/{id}/messages`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageJson {
    /// `reply` (default), `promise`, `decline` or `done`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The words; may be empty except for a reply.
    #[serde(default)]
    pub text: String,
}

/// `GET /conversations/{id}` options.
#[derive(Debug, Deserialize)]
pub struct ThreadParams {
    /// Whether reading marks the other side's messages seen and sends read receipts
    /// (default true).
    #[serde(default)]
    pub read: Option<bool>,
}

pub(super) async fn reply(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ReplyJson>, JsonRejection>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let post = id_of(&s, &id)?;
    let Json(r) = body?;
    let sent = s.node.reply(&post, &r.text).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

pub(super) async fn list(State(s): State<AppState>) -> ApiResult<Inbox> {
    Ok(Json(s.node.inbox().await?))
}

pub(super) async fn get(
    State(s): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<ThreadParams>,
) -> ApiResult<Thread> {
    let id = s.node.resolve_conversation(&id).await?;
    Ok(Json(s.node.thread(&id, params.read.unwrap_or(true)).await?))
}

pub(super) async fn send(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<MessageJson>, JsonRejection>,
) -> Result<(StatusCode, Json<Sent>), ApiError> {
    let Json(m) = body?;
    let kind = match m.kind.as_deref() {
        Some(k) => parse::<MessageKind>("kind", k)?,
        None => MessageKind::Reply,
    };
    let id = s.node.resolve_conversation(&id).await?;
    let sent = s.node.send_message(&id, kind, &m.text).await?;
    Ok((StatusCode::CREATED, Json(sent)))
}

/// The API error for a messages failure.
pub(super) fn error(e: &crate::messages::Error, message: String) -> ApiError {
    use crate::messages::Error as E;
    match e {
        E::NoPost(_) | E::NoConversation(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
        }
        E::Ambiguous(..) => ApiError::field("id", message),
        E::Text(_) => ApiError::field("text", message),
        E::NotAuthor => ApiError::new(StatusCode::FORBIDDEN, "not_author", message),
        E::OwnPost | E::NotLive(_) | E::Blocked => {
            ApiError::new(StatusCode::CONFLICT, "conflict", message)
        }
        _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
    }
}

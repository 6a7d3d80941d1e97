//! The local HTTP API (axum): JSON over HTTP on loopback, bearer token required.
//!
//! While it runs, `<data-dir>/api.addr` holds the bound address and
//! `<data-dir>/api.token` (mode 0600) a random token; both are removed on a clean
//! shutdown. The token is written first and the address last, so an `api.addr` that
//! exists means the API is ready. The CLI and [`crate::client::ApiClient`] find the
//! node through them.

mod events;
pub mod json;
pub mod membrane;
mod messages;

pub use events::{IDLE as EVENT_STREAM_IDLE, MAX_STREAMS as MAX_EVENT_STREAMS};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use aidmesh_proto::{AuthorKey, Category, Kind, PostId, Status};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query as QueryParams, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use libp2p::PeerId;
use tokio::sync::oneshot;

use crate::draft::{Draft, Edit, EditError};
use crate::events::Event;
use crate::identity::{author_peer_id, peer_id_author};
use crate::node::{self, NodeHandle};
use crate::store::{Query, Refused, StatusFilter};
use crate::DataDir;
use json::{BlockJson, DraftJson, EditJson, ErrorBody, ErrorDetail, PostJson};

/// The default API address.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7650";
/// Largest request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long open requests (event streams) get to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// Largest import body (JSON lines of signed posts).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// API start-up failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A non-loopback address without `--api-public`.
    #[error("refusing to serve the API on non-loopback address {0}; pass --api-public to allow it (the token is still required)")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot serve the API on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The address or token file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    files: Vec<PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and removes `api.addr` and `api.token`. Open event streams never
    /// end on their own, so connections still open after a grace period are cut.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[derive(Clone)]
struct AppState {
    node: NodeHandle,
    token: String,
    /// The web pages' logins: `POST ui/login` makes a one-time login URL.
    web: crate::web::WebState,
    /// Slots for event streams (see [`MAX_EVENT_STREAMS`]).
    streams: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Binds `addr`, writes the address and a fresh token to the data dir, and serves.
pub async fn serve(
    node: NodeHandle,
    addr: SocketAddr,
    allow_public: bool,
    data_dir: &DataDir,
) -> Result<ApiServer, Error> {
    if !addr.ip().is_loopback() && !allow_public {
        return Err(Error::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr, source })?;
    let token = hex::encode(rand::random::<[u8; 32]>());
    write_private(&data_dir.api_token(), token.as_bytes())?;
    write_private(&data_dir.api_addr(), bound.to_string().as_bytes())?;
    let web = crate::web::WebState::new(node.clone(), data_dir.clone(), bound);
    let state = AppState {
        node,
        token,
        web,
        streams: events::slots(),
    };
    let app = router(state);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = stop_rx.await;
        });
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "API server stopped");
        }
    });
    tracing::info!(address = %bound, "local API listening");
    Ok(ApiServer {
        addr: bound,
        files: vec![data_dir.api_addr(), data_dir.api_token()],
        stop: Some(stop_tx),
        task,
    })
}

/// Writes a file readable only by its owner, atomically.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

fn router(state: AppState) -> Router {
    let web = state.web.clone();
    let api = Router::new()
        .route("/status", get(status))
        .route("/peers", get(peers))
        .route("/posts", get(list_posts).post(create_post))
        .route("/posts/{id}", get(get_post).put(edit_post))
        .route("/posts/{id}/withdraw", post(withdraw_post))
        .route("/posts/{id}/fulfil", post(fulfil_post))
        .route("/posts/{id}/reopen", post(reopen_post))
        .route("/events", get(events::events))
        .route("/blocks", get(list_blocks).post(add_block))
        .route("/blocks/{author}", delete(remove_block))
        .route("/export", get(export))
        .route("/circles", get(list_circles).post(join_circle))
        .route("/circles/{name}", delete(leave_circle))
        .route("/circles/closed", post(membrane::create))
        .route(
            "/circles/{name}/members",
            get(membrane::members).post(membrane::admit),
        )
        .route("/circles/{name}/members/{peer}", delete(membrane::remove))
        .route(
            "/circles/{name}/moderators",
            get(membrane::moderators).post(membrane::grant),
        )
        .route("/circles/{name}/blocklist", post(membrane::block))
        .route("/posts/{id}/hide", post(membrane::hide))
        .route(
            "/moderation/follow",
            get(membrane::list_follow).post(membrane::follow),
        )
        .route("/moderation/follow/{peer}", delete(membrane::unfollow))
        .route("/invite", get(invite))
        .route("/join", post(join))
        .route("/matches", get(my_matches))
        .route("/posts/{id}/matches", get(post_matches))
        .route("/alerts", get(list_alerts).post(add_alert))
        .route("/alerts/{id}", delete(remove_alert))
        .route("/posts/{id}/replies", post(messages::reply))
        .route("/conversations", get(messages::list))
        .route("/conversations/{id}", get(messages::get))
        .route("/conversations/{id}/messages", post(messages::send))
        .route("/ui/login", post(ui_login))
        .route(
            "/import",
            post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // The web page at `/` (src/web); the JSON API keeps `/api/v1`.
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::web::router(web.clone()))
        .fallback(move |request: Request| {
            let web = web.clone();
            async move {
                // Unknown paths: a JSON 404 under `/api`, the web page's own elsewhere.
                if request.uri().path().starts_with("/api") {
                    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
                        .into_response()
                } else {
                    crate::web::not_found(&web, request).await
                }
            }
        })
}

/// `POST ui/login`: a one-time login URL for the web page (what `aidmesh ui` prints).
async fn ui_login(State(s): State<AppState>) -> Json<json::UiLoginJson> {
    Json(json::UiLoginJson {
        url: s.web.login_url(),
    })
}

/// An API error, rendered as `{"error": {...}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorDetail,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorDetail {
                code: code.into(),
                message: message.into(),
                field: None,
            },
        }
    }

    fn field(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid", message);
        e.body.field = Some(field.into());
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorBody { error: self.body })).into_response()
    }
}

impl From<node::Error> for ApiError {
    fn from(e: node::Error) -> Self {
        use node::Error as E;
        match &e {
            E::Invalid(v) => Self::field(v.field.as_str(), e.to_string()),
            E::Circle(_) => Self::field("circle", e.to_string()),
            E::Store(crate::store::Error::Query(q)) => Self::field(q.field(), e.to_string()),
            E::Store(crate::store::Error::Refused(
                r @ (Refused::OverQuota { .. }
                | Refused::CircleFull { .. }
                | Refused::Newcomers { .. }),
            )) => Self::new(StatusCode::TOO_MANY_REQUESTS, &r.code(), e.to_string()),
            E::Store(crate::store::Error::DiskFull(_)) => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "disk_full", e.to_string())
            }
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::NotAuthor(_) => Self::new(StatusCode::FORBIDDEN, "not_author", e.to_string()),
            E::Edit(EditError::Withdrawn | EditError::LastRevision) => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            E::Alerts(a) => match a.field() {
                Some(field) => Self::field(field, e.to_string()),
                None if matches!(a, crate::alerts::Error::NotFound(_)) => {
                    Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
                }
                None => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
            },
            E::Closed => Self::new(StatusCode::SERVICE_UNAVAILABLE, "closed", e.to_string()),
            E::Messages(m) => messages::error(m, e.to_string()),
            E::Membership(m) => {
                use crate::circles::Error as M;
                let status = match m {
                    M::Name { .. } => return Self::field("circle", e.to_string()),
                    M::NotMember { .. } => (StatusCode::CONFLICT, "not_member"),
                    M::LastCircle { .. } => (StatusCode::CONFLICT, "last_circle"),
                    M::NotModerator { .. } => (StatusCode::FORBIDDEN, "not_moderator"),
                    M::NotFounder { .. } => (StatusCode::FORBIDDEN, "not_founder"),
                    M::UnknownCircle { .. } => (StatusCode::NOT_FOUND, "unknown_circle"),
                    M::Ambiguous { .. } => (StatusCode::CONFLICT, "ambiguous"),
                    M::NotClosed { .. } => (StatusCode::CONFLICT, "not_closed"),
                    M::NoEffect(_) => (StatusCode::CONFLICT, "no_effect"),
                    M::Record(_) => (StatusCode::BAD_REQUEST, "invalid_record"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
                };
                let mut err = Self::new(status.0, status.1, e.to_string());
                err.body.field = Some("circle".into());
                err
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
        }
    }
}

impl From<crate::ids::Error> for ApiError {
    fn from(e: crate::ids::Error) -> Self {
        use crate::ids::Error as E;
        match &e {
            E::NoSuchPost(_) => Self::new(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            E::Ambiguous { .. } => Self::new(StatusCode::CONFLICT, "ambiguous", e.to_string()),
            _ => Self::field("id", e.to_string()),
        }
    }
}

impl From<crate::listing::Error> for ApiError {
    fn from(e: crate::listing::Error) -> Self {
        use crate::listing::Error as E;
        match e {
            E::Store(s) => node::Error::from(s).into(),
            E::Radius(_) => Self::field("within_km", e.to_string()),
            E::Around(_) => Self::field("near", e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("request body over {MAX_BODY_BYTES} bytes"),
                )
            }
            JsonRejection::JsonDataError(e) => {
                // serde names the field in its message ("unknown field `x`", "at line..").
                let text = e.body_text();
                let field = text
                    .split('`')
                    .nth(1)
                    .map(str::to_string)
                    .unwrap_or_else(|| "body".into());
                let mut err = Self::field(&field, text);
                err.body.field = Some(field);
                err
            }
            other => Self::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
        }
    }
}

async fn auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison: the token is the only thing between a local process
    // and the node's identity.
    let ok = given.len() == state.token.len()
        && given
            .bytes()
            .zip(state.token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token (see <data-dir>/api.token)",
        )
        .into_response();
    }
    next.run(request).await
}

type ApiResult<T> = Result<Json<T>, ApiError>;

async fn status(State(s): State<AppState>) -> ApiResult<serde_json::Value> {
    let st = s.node.status().await?;
    let v = serde_json::to_value(&st)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(v))
}

/// `GET circles`: each circle this node is in, with members connected and seen,
/// stored posts and last activity.
async fn list_circles(State(s): State<AppState>) -> ApiResult<Vec<crate::circles::CircleInfo>> {
    Ok(Json(s.node.circle_infos().await?))
}

/// `POST circles {"name": "riverside"}`: joins a circle (saved in `config.toml`).
async fn join_circle(
    State(s): State<AppState>,
    body: Result<Json<json::CircleJoinJson>, JsonRejection>,
) -> Result<(StatusCode, Json<json::CircleJoinedJson>), ApiError> {
    let Json(body) = body.map_err(ApiError::from)?;
    let new = s.node.join_circle(&body.name).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json::CircleJoinedJson {
            circle: body.name,
            new,
        }),
    ))
}

/// `DELETE circles/{name}`: leaves a circle and deletes its posts from this node.
async fn leave_circle(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<crate::circles::Left> {
    Ok(Json(s.node.leave_circle(&name).await?))
}

/// `GET invite?circle=NAME`: a code others can join this node's circle with.
async fn invite(
    State(s): State<AppState>,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> ApiResult<json::InviteJson> {
    let circle = match params.get("circle") {
        Some(c) => c.clone(),
        None => s
            .node
            .status()
            .await?
            .circles
            .into_iter()
            .next()
            .unwrap_or_else(|| aidmesh_proto::rules::DEFAULT_CIRCLE.to_string()),
    };
    let invite = s.node.invite(&circle).await?;
    let code = invite
        .encode()
        .map_err(|e| ApiError::field("circle", e.to_string()))?;
    let addrs = crate::invite::read(&code)
        .map(|j| j.bootstrap)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Json(json::InviteJson {
        code,
        circle: invite.circle,
        addrs,
    }))
}

/// `POST join {"code": "..."}`: joins the invite's circle and dials its peers now.
/// Saving them to `config.toml` is the caller's choice (the CLI does).
async fn join(
    State(s): State<AppState>,
    body: Result<Json<json::JoinJson>, JsonRejection>,
) -> ApiResult<json::JoinedJson> {
    let Json(body) = body.map_err(ApiError::from)?;
    let joining =
        crate::invite::read(&body.code).map_err(|e| ApiError::field("code", e.to_string()))?;
    let dialled = s.node.join_invite(&joining).await?;
    Ok(Json(json::JoinedJson {
        circle: joining.circle,
        bootstrap: joining.bootstrap,
        dialled,
    }))
}

async fn peers(State(s): State<AppState>) -> ApiResult<Vec<crate::net::PeerInfo>> {
    Ok(Json(s.node.peers().await?))
}

fn parse<T: std::str::FromStr>(field: &str, v: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e: T::Err| ApiError::field(field, format!("{field}: {e}")))
}

/// Builds a store query from URL parameters; an unknown or bad parameter is a 400
/// naming it.
fn query_from(params: &HashMap<String, String>) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for (k, v) in params {
        match k.as_str() {
            "kind" => q.kind = Some(parse::<Kind>("kind", v)?),
            "category" => q.category = Some(parse::<Category>("category", v)?),
            "circle" => q.circle = Some(v.clone()),
            "tag" => q.tag = Some(v.clone()),
            "near" => q.near = Some(v.clone()),
            "text" | "search" => q.text = Some(v.clone()),
            "author" => q.author = Some(author_of("author", v)?),
            "status" => {
                q.status = match v.as_str() {
                    "any" | "all" => StatusFilter::Any,
                    "live" => StatusFilter::Live,
                    s => StatusFilter::Only(parse::<Status>("status", s)?),
                }
            }
            "all" => {
                if parse::<bool>("all", v)? {
                    q.status = StatusFilter::Any;
                }
            }
            "limit" => q.limit = parse("limit", v)?,
            "offset" => q.offset = parse("offset", v)?,
            other => {
                return Err(ApiError::field(
                    other,
                    format!("unknown parameter {other:?}"),
                ))
            }
        }
    }
    q.validate()
        .map_err(|e| ApiError::field(e.field(), e.to_string()))?;
    Ok(q)
}

fn author_of(field: &str, v: &str) -> Result<AuthorKey, ApiError> {
    let peer: PeerId = parse(field, v)?;
    peer_id_author(&peer).ok_or_else(|| ApiError::field(field, "not an ed25519 peer id"))
}

/// A post id from a path: the whole id or a unique prefix of at least 8 characters
/// (see [`crate::ids`]).
fn id_of(s: &AppState, v: &str) -> Result<PostId, ApiError> {
    Ok(crate::ids::resolve_post(s.node.store(), v)?)
}

/// An author from a peer id or a unique prefix of one among the authors this node
/// stores, has blocked or is connected to.
async fn author_prefix(s: &AppState, v: &str) -> Result<AuthorKey, ApiError> {
    let mut known = s.node.store().authors();
    if let Ok(peers) = s.node.peers().await {
        known.extend(peers.iter().filter_map(|p| peer_id_author(&p.peer_id)));
    }
    crate::ids::resolve_author(v, known).map_err(|e| ApiError::field("author", e.to_string()))
}

async fn list_posts(
    State(s): State<AppState>,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> ApiResult<Vec<PostJson>> {
    let listing = listing_from(params)?;
    let posts = crate::listing::list(s.node.store(), &listing, crate::clock::now_ms())?;
    Ok(Json(
        posts.iter().map(|p| PostJson::from(p.post())).collect(),
    ))
}

/// A listing from URL parameters: those of [`query_from`], `tag` as a comma-separated
/// list (every tag must be present) and `within_km` (with `near`: a distance from the
/// centre of that cell instead of an area).
fn listing_from(mut params: HashMap<String, String>) -> Result<crate::listing::Listing, ApiError> {
    let within = params
        .remove("within_km")
        .map(|v| parse::<f64>("within_km", &v))
        .transpose()?;
    let mut more_tags = Vec::new();
    if let Some(tags) = params.remove("tag") {
        let mut tags = tags.split(',').map(|t| t.trim().to_string());
        if let Some(first) = tags.next() {
            params.insert("tag".into(), first);
        }
        more_tags = tags.collect();
    }
    let mut query = query_from(&params)?;
    let within = match (within, query.near.take()) {
        (Some(km), Some(around)) => Some(crate::listing::Within { around, km }),
        (Some(_), None) => return Err(ApiError::field("within_km", "within_km: needs near")),
        (None, near) => {
            query.near = near;
            None
        }
    };
    let listing = crate::listing::Listing {
        query,
        more_tags,
        within,
    };
    listing.validate()?;
    Ok(listing)
}

async fn get_post(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<PostJson> {
    let id = id_of(&s, &id)?;
    let p = s.node.get(&id)?.ok_or(node::Error::NotFound(id))?;
    Ok(Json(PostJson::from(p.post())))
}

/// A draft from its JSON, naming the field of any problem.
pub fn draft_from(d: DraftJson) -> Result<Draft, ApiError> {
    let kind = match d.kind.as_deref() {
        Some(k) => parse::<Kind>("kind", k)?,
        None => return Err(ApiError::field("kind", "kind: required (offer or request)")),
    };
    let category = match d.category.as_deref() {
        Some(c) => parse::<Category>("category", c)?,
        None => Category::Other,
    };
    let expires_in_secs = d
        .expires_in
        .as_deref()
        .map(json::parse_duration_secs)
        .transpose()
        .map_err(|e| ApiError::field("expires_in", e))?;
    Ok(Draft {
        kind,
        category,
        title: d.title,
        body: d.body,
        tags: d.tags,
        location: d.location,
        quantity: d.quantity,
        contact: d.contact,
        circle: d.circle,
        expires_in_secs,
    })
}

async fn create_post(
    State(s): State<AppState>,
    body: Result<Json<DraftJson>, JsonRejection>,
) -> Result<(StatusCode, Json<PostJson>), ApiError> {
    let Json(d) = body?;
    let post = s.node.publish(draft_from(d)?).await?;
    Ok((StatusCode::CREATED, Json(PostJson::from(&post))))
}

async fn edit_post(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<EditJson>, JsonRejection>,
) -> ApiResult<PostJson> {
    let id = id_of(&s, &id)?;
    let Json(e) = body?;
    let cleared = |f: &str| e.clear.iter().any(|c| c == f);
    for c in &e.clear {
        if !["location", "quantity", "contact"].contains(&c.as_str()) {
            return Err(ApiError::field(
                "clear",
                format!("clear: {c:?} cannot be cleared (location, quantity or contact can)"),
            ));
        }
    }
    let (clear_location, clear_quantity, clear_contact) =
        (cleared("location"), cleared("quantity"), cleared("contact"));
    let edit = Edit {
        category: e
            .category
            .as_deref()
            .map(|c| parse::<Category>("category", c))
            .transpose()?,
        title: e.title,
        body: e.body,
        tags: e.tags,
        location: e.location,
        quantity: e.quantity,
        contact: e.contact,
        expires_in_secs: e
            .expires_in
            .as_deref()
            .map(json::parse_duration_secs)
            .transpose()
            .map_err(|m| ApiError::field("expires_in", m))?,
        clear_location,
        clear_quantity,
        clear_contact,
    };
    let post = s.node.edit(&id, edit).await?;
    Ok(Json(PostJson::from(&post)))
}

async fn withdraw_post(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<PostJson> {
    let post = s.node.withdraw(&id_of(&s, &id)?).await?;
    Ok(Json(PostJson::from(&post)))
}

async fn fulfil_post(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<PostJson> {
    let post = s.node.fulfil(&id_of(&s, &id)?).await?;
    Ok(Json(PostJson::from(&post)))
}

async fn reopen_post(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<PostJson> {
    let post = s.node.reopen(&id_of(&s, &id)?).await?;
    Ok(Json(PostJson::from(&post)))
}

async fn list_blocks(State(s): State<AppState>) -> ApiResult<Vec<String>> {
    let blocked = s.node.store().blocked().map_err(node::Error::from)?;
    Ok(Json(
        blocked
            .iter()
            .map(|a| {
                author_peer_id(a)
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| a.to_string())
            })
            .collect(),
    ))
}

async fn add_block(
    State(s): State<AppState>,
    body: Result<Json<BlockJson>, JsonRejection>,
) -> ApiResult<serde_json::Value> {
    let Json(b) = body?;
    let author = author_prefix(&s, &b.author).await?;
    if author == s.node.identity().author() {
        return Err(ApiError::field(
            "author",
            "author: that is this node's own peer id; a node cannot block itself",
        ));
    }
    let removed = s.node.block(&author)?;
    let shown = author_peer_id(&author).map_or(b.author, |p| p.to_string());
    Ok(Json(
        serde_json::json!({ "author": shown, "removed_posts": removed }),
    ))
}

async fn remove_block(
    State(s): State<AppState>,
    Path(author): Path<String>,
) -> ApiResult<serde_json::Value> {
    let key = crate::ids::resolve_author(
        &author,
        s.node.store().blocked().map_err(node::Error::from)?,
    )
    .map_err(|e| ApiError::field("author", e.to_string()))?;
    let author = author_peer_id(&key).map_or(author, |p| p.to_string());
    let was = s.node.unblock(&key)?;
    if !was {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "that author is not blocked",
        ));
    }
    Ok(Json(
        serde_json::json!({ "author": author, "unblocked": true }),
    ))
}

/// `GET export`: every stored post as JSON lines of signed wire bytes.
async fn export(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    for p in s.node.store().all() {
        let p = p.map_err(node::Error::from)?;
        out.push_str(&crate::transfer::export_line(&p).map_err(node::Error::from)?);
        out.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out).into_response())
}

/// `POST import`: JSON lines as `export` writes them; every post is verified like
/// one from the network.
async fn import(State(s): State<AppState>, body: String) -> ApiResult<json::ImportReport> {
    let mut report = json::ImportReport::default();
    let refuse = |report: &mut json::ImportReport, line: usize, reason: String| {
        report.invalid += 1;
        if report.refused.len() < json::MAX_REFUSED_LINES {
            report.refused.push(json::RefusedLine { line, reason });
        }
    };
    let mut batch = Vec::new();
    let mut lines = Vec::new();
    for (n, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match crate::transfer::read_export_line(line) {
            Ok(sp) => {
                batch.push(sp);
                lines.push(n + 1);
            }
            Err(reason) => refuse(&mut report, n + 1, reason),
        }
    }
    let results = s.node.import(batch).await?;
    for (r, line) in results.into_iter().zip(lines) {
        match r {
            Ok(o) if o.changed() => report.new += 1,
            Ok(_) => report.old += 1,
            Err(e) => refuse(&mut report, line, e.to_string()),
        }
    }
    report.refused.sort_by_key(|r| r.line);
    Ok(Json(report))
}

/// The SSE name and JSON data of a node event.
pub fn sse_parts(e: &Event) -> (&'static str, serde_json::Value) {
    match e {
        Event::PostAdded { post, origin } => (
            "post_added",
            serde_json::json!({ "post": PostJson::from(post.as_ref()), "origin": origin }),
        ),
        Event::PostUpdated {
            post,
            previous_revision,
            origin,
        } => (
            "post_updated",
            serde_json::json!({ "post": PostJson::from(post.as_ref()), "previous_revision": previous_revision, "origin": origin }),
        ),
        Event::PeerConnected { peer_id, address } => (
            "peer_connected",
            serde_json::json!({ "peer_id": peer_id.to_string(), "address": address.to_string() }),
        ),
        Event::PeerDisconnected { peer_id } => (
            "peer_disconnected",
            serde_json::json!({ "peer_id": peer_id.to_string() }),
        ),
        Event::SyncFinished {
            peer_id,
            circle,
            missing,
            fetched,
            round_trips,
            error,
        } => (
            "sync_finished",
            serde_json::json!({ "peer_id": peer_id.to_string(), "circle": circle, "missing": missing,
                "fetched": fetched, "round_trips": round_trips, "error": error }),
        ),
        Event::Match {
            post,
            origin,
            target,
            score,
            reasons,
        } => (
            "match",
            serde_json::json!({ "post": PostJson::from(post.as_ref()), "origin": origin,
                "target": target, "score": score, "reasons": reasons }),
        ),
        Event::Message {
            conversation,
            message,
        } => (
            "message",
            serde_json::json!({ "conversation": conversation, "message": message }),
        ),
    }
}

/// Matches per post when the caller does not say.
const DEFAULT_MATCHES: usize = 5;
/// Most matches per post.
const MAX_MATCHES: usize = 100;

/// The `limit` URL parameter of the match endpoints; any other parameter is a 400.
fn match_limit(params: &HashMap<String, String>, default: usize) -> Result<usize, ApiError> {
    let mut limit = default;
    for (k, v) in params {
        match k.as_str() {
            "limit" => limit = parse("limit", v)?,
            other => {
                return Err(ApiError::field(
                    other,
                    format!("unknown parameter {other:?}"),
                ))
            }
        }
    }
    if limit == 0 || limit > MAX_MATCHES {
        return Err(ApiError::field(
            "limit",
            format!("limit: must be between 1 and {MAX_MATCHES}, got {limit}"),
        ));
    }
    Ok(limit)
}

/// `GET matches`: each of this node's open posts with its best matches.
async fn my_matches(
    State(s): State<AppState>,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> ApiResult<Vec<json::PostMatchesJson>> {
    let limit = match_limit(&params, DEFAULT_MATCHES)?;
    let all = s.node.my_matches(limit)?;
    Ok(Json(
        all.iter()
            .map(|(post, found)| json::PostMatchesJson {
                post: PostJson::from(post),
                matches: found.iter().map(json::MatchJson::from).collect(),
            })
            .collect(),
    ))
}

/// `GET posts/{id}/matches`: the best matches for any stored post.
async fn post_matches(
    State(s): State<AppState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams<HashMap<String, String>>,
) -> ApiResult<Vec<json::MatchJson>> {
    let id = id_of(&s, &id)?;
    let limit = match_limit(&params, 2 * DEFAULT_MATCHES)?;
    let found = s.node.matches_for(&id, limit)?;
    Ok(Json(found.iter().map(json::MatchJson::from).collect()))
}

/// `GET alerts`.
async fn list_alerts(State(s): State<AppState>) -> ApiResult<Vec<json::AlertJson>> {
    Ok(Json(
        s.node
            .alerts()
            .list()
            .iter()
            .map(json::AlertJson::from)
            .collect(),
    ))
}

/// The filters an alert may have: those of `list`, minus limit, offset and status.
const ALERT_FILTERS: &[&str] = &[
    "kind",
    "category",
    "tag",
    "near",
    "within_km",
    "search",
    "text",
    "circle",
];

/// `POST alerts` with a JSON object of filters (`{"kind": "offer", "tag": "bike"}`),
/// checked like `list`'s URL parameters.
async fn add_alert(
    State(s): State<AppState>,
    body: Result<Json<HashMap<String, serde_json::Value>>, JsonRejection>,
) -> Result<(StatusCode, Json<json::AlertJson>), ApiError> {
    let Json(body) = body?;
    let mut params = HashMap::new();
    for (k, v) in body {
        if !ALERT_FILTERS.contains(&k.as_str()) {
            return Err(ApiError::field(
                &k,
                format!(
                    "unknown alert filter {k:?} (expected one of: {})",
                    ALERT_FILTERS.join(", ")
                ),
            ));
        }
        match v {
            serde_json::Value::Null => {}
            serde_json::Value::String(v) => {
                params.insert(k, v);
            }
            serde_json::Value::Number(n) if k == "within_km" => {
                params.insert(k, n.to_string());
            }
            _ => return Err(ApiError::field(&k, format!("{k}: must be a string"))),
        }
    }
    let within_km = params
        .remove("within_km")
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                ApiError::field("within_km", "within_km: must be a whole number of km")
            })
        })
        .transpose()?;
    let q = query_from(&params)?;
    let filter = crate::alerts::AlertFilter {
        kind: q.kind,
        category: q.category,
        tag: q.tag,
        near: q.near,
        within_km,
        search: q.text,
        circle: q.circle,
    };
    let alert = s.node.add_alert(filter)?;
    Ok((StatusCode::CREATED, Json(json::AlertJson::from(&alert))))
}

/// `DELETE alerts/{id}`.
async fn remove_alert(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<json::AlertJson> {
    let id: crate::alerts::AlertId = parse("id", &id)?;
    let alert = s.node.remove_alert(id)?;
    Ok(Json(json::AlertJson::from(&alert)))
}

//! `GET /events`: the node's events as a server-sent event stream, with bounds: at
//! most [`MAX_STREAMS`] streams at once, and each ends when its client stops reading
//! for [`STALL`] or no event came for [`IDLE`] (clients reconnect; browsers'
//! `EventSource` does so by itself).
//!
//! A forwarding task per stream owns the slot and the broadcast receiver, so a client
//! that stops reading frees its slot even though nothing polls its response body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use libp2p::futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, Semaphore};

use super::{sse_parts, ApiError, AppState};

/// Event streams open at once.
pub const MAX_STREAMS: usize = 32;
/// A stream with no event for this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A stream whose client has not taken an event for this long (its buffer full) ends.
pub const STALL: Duration = Duration::from_secs(60);
/// Events buffered per stream for a slow client.
const BUFFER: usize = 256;

/// The slots, shared by the server's handlers.
pub(super) fn slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_STREAMS))
}

pub(super) async fn events(
    State(s): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let slot = s.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!("at most {MAX_STREAMS} event streams at once; close one and try again"),
        )
    })?;
    let mut rx = s.node.subscribe();
    let (tx, out) = mpsc::channel::<SseEvent>(BUFFER);
    tokio::spawn(async move {
        let _slot = slot;
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                next = tokio::time::timeout(IDLE, rx.recv()) => next,
            };
            let event = match next {
                Err(_) | Ok(Err(RecvError::Closed)) => return,
                // Missed events are skipped, as before: the stream is a live view.
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Ok(e)) => e,
            };
            let (name, data) = sse_parts(&event);
            let sse = SseEvent::default().event(name).data(data.to_string());
            if !matches!(tokio::time::timeout(STALL, tx.send(sse)).await, Ok(Ok(()))) {
                return;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

//! The admin API behind `/admin`: the live state of every room, closing a room, disconnecting
//! someone. Every request carries the configured token (`Authorization: Bearer …`); without a
//! configured token the API does not exist.
//!
//! The token travels in a header, never a cookie, so another site cannot make a browser use it.
//! It is compared by digest, in time that does not depend on the guess, and each client address
//! may get it wrong only a few times a minute: guessing a token of 16 characters or more is
//! hopeless.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::admission::address_key;
use crate::config::Config;
use crate::metrics::COUNTERS;
use crate::passwords::same_secret;
use crate::ratelimit::PerAddress;
use crate::realtime::{ClientAddress, Hub};
use crate::validate::{ApiError, ErrorCode};

/// The longest a request for the state waits for it to change.
const LONG_POLL: Duration = Duration::from_secs(25);
/// While calls go through the media server, their figures move all the time: the state is
/// answered at least this often.
const MEDIA_REFRESH: Duration = Duration::from_secs(2);

/// Wrong tokens one client address may send in a burst, then one every [`GUESS_EVERY`] seconds.
const GUESS_BURST: u32 = 10;
const GUESS_EVERY: f64 = 6.0;

#[derive(Clone)]
struct Admin {
    token: Option<Arc<str>>,
    hub: Arc<Hub>,
    /// Wrong tokens, per client address.
    guesses: Arc<PerAddress>,
    ipv6_prefix: u8,
}

/// Who sent a request: the client's address as the HTTP gate found it (none in unit tests).
type Client = Option<Extension<ClientAddress>>;

/// The API's routes, under `/admin/api`, and `/metrics`.
pub fn routes(config: &Config, hub: Arc<Hub>) -> Router {
    let admin = Admin {
        token: config.admin_token.as_deref().map(Arc::from),
        hub,
        guesses: Arc::new(PerAddress::new(GUESS_BURST, 1.0 / GUESS_EVERY)),
        ipv6_prefix: config.ipv6_prefix,
    };
    Router::new()
        .route("/admin/api/state", get(state))
        .route("/admin/api/close-room", post(close_room))
        .route("/admin/api/disconnect", post(disconnect))
        .route("/admin/api/drain", post(drain))
        .route("/admin/api/{*rest}", axum::routing::any(unknown))
        .route("/metrics", get(metrics))
        .with_state(admin)
}

/// `/metrics`, for this machine (a collector beside the server, or a proxy that forwards the
/// client's address, which is then the client's) or with the admin token: what it tells of rooms,
/// refusals and load is no one else's business.
async fn metrics(State(admin): State<Admin>, client: Client, headers: HeaderMap) -> Response {
    let local = client.as_ref().is_none_or(|Extension(ClientAddress(ip))| ip.to_canonical().is_loopback());
    if !local && let Err(e) = admin.authorise(client, &headers) {
        let e = match e.code {
            ErrorCode::AdminDisabled => ApiError::new(
                ErrorCode::NotFound,
                "metrics are served to this machine only (or to any address with --admin-token)",
            ),
            _ => e,
        };
        return failure(e);
    }
    let page = crate::metrics::render(&admin.hub.gauges());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], page).into_response()
}

/// The state; with `?after=<version>`, once it is not that version (or after [`LONG_POLL`]).
async fn state(State(admin): State<Admin>, client: Client, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(e) = admin.authorise(client, &headers) {
        return failure(e);
    }
    match after(query.as_deref().unwrap_or("")) {
        Ok(Some(seen)) => {
            let wait = if admin.hub.media_calls() > 0 { MEDIA_REFRESH } else { LONG_POLL };
            let _ = tokio::time::timeout(wait, admin.hub.presence_changed(seen)).await;
        }
        Ok(None) => {}
        Err(e) => return failure(e),
    }
    axum::Json(admin.hub.admin_state()).into_response()
}

/// The `after` parameter of a query string, if any.
fn after(query: &str) -> Result<Option<u64>, ApiError> {
    let Some(value) = query.split('&').find_map(|p| p.strip_prefix("after=")) else { return Ok(None) };
    value.parse().map(Some).map_err(|_| ApiError::bad_request("after must be a version number from a previous answer"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRoom {
    room: String,
}

async fn close_room(State(admin): State<Admin>, client: Client, headers: HeaderMap, body: Bytes) -> Response {
    let request = admin.authorise(client, &headers).and_then(|()| parse::<CloseRoom>(&body));
    match request {
        Ok(CloseRoom { room }) => match admin.hub.close_room(&room).await {
            Ok(people) => axum::Json(serde_json::json!({ "room": room.trim(), "people": people })).into_response(),
            Err(e) => failure(e),
        },
        Err(e) => failure(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Disconnect {
    id: String,
}

async fn disconnect(State(admin): State<Admin>, client: Client, headers: HeaderMap, body: Bytes) -> Response {
    let request = admin.authorise(client, &headers).and_then(|()| parse::<Disconnect>(&body));
    match request.and_then(|Disconnect { id }| admin.hub.kick(&id).map(|node| (id, node))) {
        Ok((id, node)) => axum::Json(serde_json::json!({ "id": id, "node": node })).into_response(),
        Err(e) => failure(e),
    }
}

/// This node drains (as on SIGUSR1): the node that answers, behind a load balancer whichever it
/// picked; ask a node directly to drain that one.
async fn drain(State(admin): State<Admin>, client: Client, headers: HeaderMap) -> Response {
    match admin.authorise(client, &headers) {
        Ok(()) => {
            admin.hub.drain();
            let body =
                serde_json::json!({ "node": admin.hub.node(), "draining": true, "calls": admin.hub.calls_here() });
            axum::Json(body).into_response()
        }
        Err(e) => failure(e),
    }
}

async fn unknown(State(admin): State<Admin>, client: Client, headers: HeaderMap) -> Response {
    match admin.authorise(client, &headers) {
        Ok(()) => failure(ApiError::new(ErrorCode::NotFound, "there is no such admin request")),
        Err(e) => failure(e),
    }
}

impl Admin {
    fn authorise(&self, client: Client, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Err(ApiError::new(
                ErrorCode::AdminDisabled,
                "the admin panel is off: start Noom with --admin-token to turn it on",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(given) = given else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "an admin token is needed (Authorization: Bearer …)"));
        };
        let client = client.map(|Extension(ClientAddress(ip))| ip);
        let key = client.map(|ip| address_key(ip, self.ipv6_prefix));
        let now = Instant::now();
        if let Some(key) = key
            && !self.guesses.has_token_at(key, now)
        {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                "too many wrong admin tokens from your address: wait a minute before trying again",
            ));
        }
        if same_secret(given, token) {
            return Ok(());
        }
        if let Some(key) = key {
            self.guesses.try_take_at(key, now);
        }
        tracing::warn!(client = ?client, "a request to the admin API with a wrong token");
        Err(ApiError::new(ErrorCode::Unauthorized, "that admin token is not right"))
    }
}

/// Compares the digests of the two, so that the time taken depends neither on where they differ
/// nor on their lengths.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body must be JSON as documented: {e}")))
}

/// An error answer, counted with the rejected inputs.
fn failure(error: ApiError) -> Response {
    COUNTERS.rejected(error.code);
    let status = match error.code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::NotFound | ErrorCode::AdminDisabled => StatusCode::NOT_FOUND,
        ErrorCode::ClusterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (status, axum::Json(&error)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdeF", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcde", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
    }

    #[test]
    fn the_version_waited_for_is_read_from_the_query() {
        assert_eq!(after("").unwrap(), None);
        assert_eq!(after("x=1&after=42").unwrap(), Some(42));
        assert!(after("after=-1").is_err());
        assert!(after("after=").is_err());
    }
}

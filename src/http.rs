//! HTTP: the web client's pages and assets, the Socket.IO client bundle, health, and the gate
//! that checks the `Origin` of Socket.IO requests.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use socketioxide::layer::SocketIoLayer;
use tower::Layer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::admission::TrustedProxies;
use crate::config::Config;
use crate::connection::PeerAddr;
use crate::metrics::COUNTERS;
use crate::origin::{OriginCheck, Served};
use crate::realtime::plain_ws::{self, PublicChat};
use crate::realtime::{Adapter, ClientAddress, Hub};
use crate::stall::Written;

/// The web client, built by `build.rs` into `web/dist`.
#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct WebClient;

const SOCKET_IO_BUNDLE: &str = "/socket.io/socket.io.js";

/// Pages load only their own scripts and talk only to their own server: injected markup could
/// not run even if it got past the client's escaping.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The camera, microphone and screen for this site's own pages; nothing else powerful.
const PERMISSIONS: &str =
    "camera=(self), microphone=(self), display-capture=(self), geolocation=(), payment=(), usb=()";

pub fn router(config: Arc<Config>, socket_io: SocketIoLayer<Adapter>, hub: Arc<Hub>) -> Router {
    let pages = Router::new()
        .route("/", get(index))
        .route("/r/{*room}", get(index))
        .route(
            "/admin",
            get({
                let enabled = config.admin_token.is_some();
                move || admin_page(enabled)
            }),
        )
        .route(
            "/healthz",
            get({
                let hub = hub.clone();
                move || health(hub.clone())
            }),
        )
        .route(
            "/readyz",
            get({
                let hub = hub.clone();
                move || ready(hub.clone())
            }),
        )
        .merge(crate::admin::routes(&config, hub.clone()))
        .route("/ws", get(plain_ws::upgrade).with_state(PublicChat::new(config.clone())))
        .fallback(asset);
    // Layered once around the whole router: each application of the layer makes an Engine.IO
    // server of its own, and a session must find the same one on every request.
    let hsts = config.tls_cert.is_some();
    let gate = Gate {
        proxies: TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default(),
        served: Arc::new(config.served()),
        hub,
    };
    // The security headers go on every answer, the gate's own (the client bundle, refusals)
    // included.
    Router::new()
        .fallback_service(socket_io.layer(pages))
        .layer(middleware::from_fn_with_state(gate, socket_io_gate))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static(PERMISSIONS),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        // Only with a certificate of a real name: a self-signed one a browser was told to trust
        // for a test should not bind it to HTTPS for a year.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            hsts.then(|| HeaderValue::from_static("max-age=31536000")),
        ))
}

/// What the gate needs.
#[derive(Clone)]
struct Gate {
    served: Arc<Served>,
    hub: Arc<Hub>,
    proxies: TrustedProxies,
}

/// The plain-HTTP side of an HTTPS server: every request is sent to HTTPS, at the public name
/// (never at a name the request made up), except ACME's HTTP-01 challenges when `acme_webroot`
/// holds them.
pub fn redirect_to_https(served: Served, https_port: u16, acme_webroot: Option<PathBuf>) -> Router {
    let router = Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri| async move {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        match served.https_location(&headers, https_port, path) {
            Some(location) => axum::response::Redirect::permanent(&location).into_response(),
            None => misdirected(None, &headers),
        }
    });
    match acme_webroot {
        Some(webroot) => router.route(
            "/.well-known/acme-challenge/{token}",
            get(move |axum::extract::Path(token): axum::extract::Path<String>| acme_challenge(webroot.clone(), token)),
        ),
        None => router,
    }
}

/// The file an ACME client left in the webroot for a challenge's token (RFC 8555, 8.3): a token
/// is base64url, so nothing else can name a path.
async fn acme_challenge(webroot: PathBuf, token: String) -> Response {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if token.is_empty() || token.len() > 256 || !token.chars().all(base64url) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match tokio::fs::read(webroot.join(".well-known/acme-challenge").join(&token)).await {
        Ok(body) => ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Alive (it answers), and whether the link to the other nodes is up: `off` for a node alone.
async fn health(hub: Arc<Hub>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "redis": hub.link_state() }))
}

/// Ready for new users (`200`), or not (`503`): shutting down, draining, or cut off from the other
/// nodes.
async fn ready(hub: Arc<Hub>) -> Response {
    let status = if hub.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({ "ready": status == StatusCode::OK, "redis": hub.link_state(), "draining": hub.is_draining() });
    (status, axum::Json(body)).into_response()
}

async fn index() -> Response {
    page("index.html")
}

/// The admin panel's page; the data behind it needs the token (see [`crate::admin`]).
async fn admin_page(enabled: bool) -> Response {
    if !enabled {
        let page = "<!doctype html><meta charset=utf-8><title>Admin · Noom</title>\
            <h1>The admin panel is off</h1><p>Start Noom with <code>--admin-token</code> \
            (or <code>NOOM_ADMIN_TOKEN</code>, or <code>admin-token</code> in its configuration file) to turn it on.</p>";
        return (StatusCode::NOT_FOUND, Html(page)).into_response();
    }
    page("admin.html")
}

fn page(name: &str) -> Response {
    match WebClient::get(name) {
        Some(file) => ([(header::CACHE_CONTROL, "no-cache")], Html(file.data)).into_response(),
        None => (StatusCode::INTERNAL_SERVER_ERROR, "the web client was not built into this binary").into_response(),
    }
}

async fn asset(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    // Pages are served at their routes only (`/`, `/r/…`, `/admin`); other paths are assets or
    // nothing.
    match WebClient::get(path).filter(|_| !path.is_empty() && !path.ends_with(".html")) {
        Some(file) => {
            let mime = file.metadata.mimetype();
            // Vite names assets by their content, so they never change under the same name.
            let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
            ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, cache)], file.data).into_response()
        }
        None => not_found(),
    }
}

fn not_found() -> Response {
    let page = "<!doctype html><meta charset=utf-8><title>Not found · Noom</title>\
        <h1>404: nothing here</h1><p>This page does not exist. <a href=\"/\">Go to Noom's lobby</a>.</p>";
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// In front of everything: refuses requests for host names this server does not answer for
/// (see [`crate::origin`]), notes the client's address; in front of Socket.IO and `/ws`, serves
/// the client bundle (which socketioxide's path would swallow), refuses browser requests from
/// origins that are not allowed, answers CORS for those that are, and admits new connections by
/// their client's address.
async fn socket_io_gate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    // Health checks come from load balancers, by whatever name they know the node.
    let health_check = matches!(request.uri().path(), "/healthz" | "/readyz");
    let client = gate.client(&request);
    if !health_check && !gate.served.serves(request.headers()) {
        return misdirected(client, request.headers());
    }
    if let Some(client) = client {
        request.extensions_mut().insert(ClientAddress(client));
    }
    let path = request.uri().path();
    if path == SOCKET_IO_BUNDLE {
        return match WebClient::get("socket.io/socket.io.js") {
            Some(file) => {
                ([(header::CONTENT_TYPE, "application/javascript; charset=utf-8")], file.data).into_response()
            }
            None => not_found(),
        };
    }
    if path == "/ws" {
        if gate.served.check_origin(request.headers()) == OriginCheck::Refused {
            return origin_refused(client, request.headers());
        }
        if gate.hub.is_draining() {
            return draining(client);
        }
        return admit_plain_websocket(&gate, client, request, next).await;
    }
    if !path.starts_with("/socket.io/") && path != "/socket.io" {
        return next.run(request).await;
    }
    // A long-polling request of a session that exists is not kept: it needs no copy.
    let query = request.uri().query().unwrap_or_default();
    let has = |param: &str| query.split('&').any(|p| p.starts_with(param));
    let sid = query.split('&').find_map(|p| p.strip_prefix("sid=")).map(str::to_owned);
    let new_session = sid.is_none();
    let polling_in_session = !new_session && has("transport=polling");
    // What waits for a socket is what was given to it less what its transport wrote: the
    // answers to its long-polling requests, or its WebSocket's connection.
    let polled = sid.clone().filter(|_| polling_in_session && request.method() == Method::GET);
    if let Some(sid) = &sid
        && has("transport=websocket")
        && let Some(written) = request.extensions().get::<Written>()
    {
        gate.hub.upgrading(sid, written);
    }
    let next = Forward { next, polled, hub: &gate.hub };
    let request = if polling_in_session { request } else { detached(request) };
    // A session this node does not hold, while it drains: one a balancer's retry (below) put on
    // another node, whose requests the balancer's hash still sends here.
    if gate.hub.is_draining() && sid.as_deref().is_none_or(|sid| !gate.hub.holds_socket(sid)) {
        return draining(client);
    }
    if let Some(client) = client
        && new_session
        && let Err(refusal) = gate.hub.admit(client)
    {
        return refused(refusal, client);
    }
    let same_origin = match gate.served.check_origin(request.headers()) {
        OriginCheck::None => return next.run(request).await,
        OriginCheck::Refused => return origin_refused(client, request.headers()),
        OriginCheck::SameOrigin => true,
        OriginCheck::Allowed => false,
    };
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else { return next.run(request).await };
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        if let Some(asked) = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        next.run(request).await
    };
    if !same_origin {
        let h = response.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// The rest of the server, behind the gate: a long-polling request's answer is counted as
/// fetched by its socket.
struct Forward<'a> {
    next: Next,
    polled: Option<String>,
    hub: &'a Hub,
}

impl Forward<'_> {
    async fn run(self, request: Request) -> Response {
        let response = self.next.run(request).await;
        if let Some(sid) = &self.polled
            && let Some(bytes) = response.body().size_hint().exact()
        {
            self.hub.polled(sid, bytes);
        }
        response
    }
}

impl Gate {
    /// The address of the client behind a request.
    fn client(&self, request: &Request) -> Option<IpAddr> {
        let ConnectInfo(PeerAddr(peer)) = request.extensions().get::<ConnectInfo<PeerAddr>>().copied()?;
        Some(self.proxies.client(peer.ip(), request.headers()))
    }
}

/// A new connection refused by the limits of its address.
fn refused(refusal: crate::admission::Refusal, client: IpAddr) -> Response {
    COUNTERS.refused_connection(refusal, client);
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "5")], refusal.message()).into_response()
}

/// A new connection to a node that is draining, or a request of a session it does not hold: a load
/// balancer that passes a 503 on to the next node (the committed nginx file does) or watches
/// `/readyz` sends it to another, and a client alone tries again.
fn draining(client: Option<IpAddr>) -> Response {
    tracing::info!(client = client.map(display), "connection refused (503): this node is draining");
    let message = "this node is draining: connect again, to another node";
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], message).into_response()
}

/// The plain `/ws` chat counts against the same limits: its connection holds a slot.
async fn admit_plain_websocket(gate: &Gate, client: Option<IpAddr>, mut request: Request, next: Next) -> Response {
    if let Some(client) = client {
        match gate.hub.occupy(client) {
            Ok(slot) => {
                request.extensions_mut().insert(slot);
            }
            Err(refusal) => return refused(refusal, client),
        }
    }
    next.run(request).await
}

/// The request with its URI and headers copied out of the connection's read buffer.
///
/// They point into hyper's buffer, which is 16 KiB a connection; socketioxide keeps a socket's
/// first request for the socket's lifetime, and with it the whole buffer. Copies let it go: about
/// a quarter of an idle connection's memory.
fn detached(request: Request) -> Request {
    let (mut parts, body) = request.into_parts();
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) =
            (header::HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            headers.append(name, value);
        }
    }
    parts.headers = headers;
    if let Ok(uri) = parts.uri.to_string().parse::<axum::http::Uri>() {
        // axum keeps the URI a second time, for nested routers.
        if let Some(original) = parts.extensions.get_mut::<axum::extract::OriginalUri>() {
            original.0 = uri.clone();
        }
        parts.uri = uri;
    }
    Request::from_parts(parts, body)
}

/// A request for a host name this server does not answer for.
fn misdirected(client: Option<IpAddr>, headers: &HeaderMap) -> Response {
    let host = text_of(headers, header::HOST);
    tracing::info!(
        client = client.map(display),
        host,
        "request refused (421): a host name not served, see --public-url"
    );
    let message = "this server does not answer for that host name; its operator can add it with --public-url";
    (StatusCode::MISDIRECTED_REQUEST, message).into_response()
}

fn origin_refused(client: Option<IpAddr>, headers: &HeaderMap) -> Response {
    let origin = text_of(headers, header::ORIGIN);
    tracing::info!(client = client.map(display), origin, "connection refused (403): an origin not allowed");
    (StatusCode::FORBIDDEN, "origin not allowed").into_response()
}

/// A header's value, for a log line (empty if absent or not text).
fn text_of(headers: &HeaderMap, name: header::HeaderName) -> &str {
    headers.get(name).and_then(|h| h.to_str().ok()).unwrap_or_default()
}

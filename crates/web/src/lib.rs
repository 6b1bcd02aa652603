//! The control panel (server-rendered HTML) and the JSON API, served by `fjord serve`.
//!
//! Both doors call the same use cases, `engine::acting`, as the signed-in user (a session
//! cookie for the panel, a bearer token for the API); handlers parse input and shape output
//! and decide nothing. Failures map to HTTP statuses in one place, [`error`].

mod api;
mod client;
mod error;
mod html;
mod observe;
mod server;
mod session;
mod views;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use engine::Fjord;

pub use client::TrustedProxies;
pub use error::WebError;
pub use server::{
    BODY_READ_TIMEOUT, CONNECTIONS_PER_ADDRESS, HEADER_READ_TIMEOUT, MAX_CONNECTIONS, Server,
};

/// How many connections to the state the panel keeps: page views read in parallel (SQLite in
/// WAL mode lets readers run beside each other and beside a dispatcher's writes).
const STATE_CONNECTIONS: usize = 8;

/// What every handler shares: open connections to the state, each given to the request that
/// finds it least busy.
#[derive(Clone)]
pub struct AppState {
    pool: Arc<Vec<(Arc<Fjord>, AtomicUsize)>>,
    /// Whether cookies are marked Secure (the panel is reached over https).
    secure_cookies: bool,
    /// Whose forwarding headers name the client (see [`client`]).
    trusted_proxies: Arc<TrustedProxies>,
}

impl AppState {
    pub fn new(fjord: Arc<Fjord>, trusted_proxies: TrustedProxies) -> engine::Result<AppState> {
        let secure_cookies = fjord.panel_url()?.starts_with("https://");
        let mut pool = vec![(fjord.clone(), AtomicUsize::new(0))];
        for _ in 1..STATE_CONNECTIONS {
            pool.push((
                Arc::new(Fjord::open(fjord.data_dir())?),
                AtomicUsize::new(0),
            ));
        }
        Ok(AppState {
            pool: Arc::new(pool),
            secure_cookies,
            trusted_proxies: Arc::new(trusted_proxies),
        })
    }

    /// The connection with the fewest requests on it, marked busy until the guard drops.
    fn fjord(&self) -> Lease {
        let (i, _) = self
            .pool
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, busy))| busy.load(Ordering::Relaxed))
            .expect("a connection");
        self.pool[i].1.fetch_add(1, Ordering::Relaxed);
        Lease {
            pool: self.pool.clone(),
            index: i,
        }
    }

    /// Runs a use case (blocking: the state is SQLite, passwords are Argon2) off the async
    /// threads.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Fjord) -> engine::Result<T> + Send + 'static,
    ) -> Result<T, WebError> {
        let lease = self.fjord();
        tokio::task::spawn_blocking(move || f(&lease.pool[lease.index].0))
            .await
            .map_err(|e| WebError::internal(format!("a request's worker failed: {e}")))?
            .map_err(WebError::from)
    }
}

struct Lease {
    pool: Arc<Vec<(Arc<Fjord>, AtomicUsize)>>,
    index: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool[self.index].1.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The whole application: panel, API, embedded assets, request log.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(observe::routes())
        .merge(html::routes())
        .nest("/api/v1", api::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_request,
        ))
        .with_state(state)
}

/// One event per request: method, path, status, time and client. Never the query string (it
/// may hold a search) nor a login link's secret.
async fn log_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let client = client::client_address(peer, request.headers(), &state.trusted_proxies);
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let path = request.uri().path().to_string();
    let shown = match route.as_deref() {
        Some(r) if r.contains("{token}") => r.to_string(),
        _ => path,
    };
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    tracing::info!(%method, path = %shown, status, ms, %client, "{method} {shown} {status}");
    response
}

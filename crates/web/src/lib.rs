//! The control panel (server-rendered HTML) and the JSON API, served by `fjord serve`.
//!
//! Both doors call the same use cases, `engine::acting`, as the signed-in user (a session
//! cookie for the panel, a bearer token for the API); handlers parse input and shape output
//! and decide nothing. Failures map to HTTP statuses in one place, [`error`].

mod api;
mod error;
mod html;
mod session;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use engine::Fjord;

pub use error::WebError;

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
}

impl AppState {
    pub fn new(fjord: Arc<Fjord>) -> engine::Result<AppState> {
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
        .merge(html::routes())
        .nest("/api/v1", api::routes())
        .layer(axum::middleware::from_fn(log_request))
        .with_state(state)
}

/// One line per request on stderr: method, path, status, time. Never the query string (it
/// may hold a search) nor a login link's secret.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
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
    eprintln!(
        "fjord: {method} {shown} {} {:.1}ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// A running panel.
pub struct Server {
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Server {
    /// Binds `listen` and serves on a runtime of its own, beside the caller's threads (the
    /// dispatcher runs on those).
    pub fn start(fjord: Arc<Fjord>, listen: &str) -> Result<Server, String> {
        let state = AppState::new(fjord).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .max_blocking_threads(12)
            .thread_name("fjord-web")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the panel's runtime: {e}"))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(listen))
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        // Pages go out whole as soon as they are written, not held back for more to send.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        runtime.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                eprintln!("fjord: the panel stopped: {e}");
            }
        });
        Ok(Server {
            addr,
            runtime,
            stop: Some(stop),
        })
    }

    /// Stops accepting requests; requests under way get a moment to finish.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.runtime
            .shutdown_timeout(std::time::Duration::from_secs(5));
    }
}

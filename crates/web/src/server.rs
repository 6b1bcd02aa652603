//! `fjord serve`'s HTTP server: its own accept loop over hyper, so that no client can hold
//! the panel's connections by sending slowly. Headers must arrive whole within
//! [`HEADER_READ_TIMEOUT`], a request's body within [`BODY_READ_TIMEOUT`], and one address
//! holds at most [`CONNECTIONS_PER_ADDRESS`] connections ([`MAX_CONNECTIONS`] in all).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request};
use engine::Fjord;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::client::TrustedProxies;
use crate::{AppState, router};

/// The most time a client has to send a request's headers, counted from when the server
/// starts reading them.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The most time a client has to send a request's body, counted from its headers.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections one address may hold open at once; more are closed as they come. A trusted
/// proxy is not counted (everyone behind it would share its count).
pub const CONNECTIONS_PER_ADDRESS: usize = 64;
/// Connections open at once, from everyone.
pub const MAX_CONNECTIONS: usize = 512;

/// A running panel.
pub struct Server {
    pub addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Binds `listen` and serves on a runtime of its own, beside the caller's threads (the
    /// dispatcher runs on those). Forwarding headers are believed from `trusted_proxies` only.
    pub fn start(
        fjord: Arc<Fjord>,
        listen: &str,
        trusted_proxies: TrustedProxies,
    ) -> Result<Server, String> {
        let state = AppState::new(fjord, trusted_proxies).map_err(|e| e.to_string())?;
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
        let (stop, stopped) = watch::channel(false);
        let trusted = state.trusted_proxies.clone();
        let app = router(state);
        runtime.spawn(accept(listener, app, trusted, stopped));
        Ok(Server {
            addr,
            runtime,
            stop,
        })
    }

    /// Stops accepting requests; requests under way get a moment to finish.
    pub fn stop(self) {
        let _ = self.stop.send(true);
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    app: Router,
    trusted: Arc<TrustedProxies>,
    mut stopped: watch::Receiver<bool>,
) {
    let open = Arc::new(OpenConnections::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, mostly: wait for connections to close.
                tracing::warn!(error = %e, "the panel cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let counted = !trusted.contains(peer.ip());
        let Some(slot) = open.take(peer.ip().to_canonical(), counted) else {
            drop(tcp);
            continue;
        };
        // Pages go out whole as soon as they are written, not held back for more to send.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            serve_connection(tcp, peer, app, stopped).await;
            drop(slot);
        });
    }
}

async fn serve_connection(
    tcp: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    peer: SocketAddr,
    app: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| axum::body::Body::new(TimedBody::new(body)));
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut app = app.clone();
        async move { app.call(Request::from(request)).await }
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = http.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = stopped.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// The connections open now, per address.
#[derive(Default)]
struct OpenConnections {
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A connection's place among the open ones, given back when it closes.
struct Slot {
    open: Arc<OpenConnections>,
    address: Option<IpAddr>,
}

impl OpenConnections {
    /// A slot for a connection from `address`, unless it or everyone together is at the
    /// limit; an uncounted address (a trusted proxy) counts only toward the total.
    fn take(self: &Arc<Self>, address: IpAddr, counted: bool) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_address) = &mut *counts;
        if *total >= MAX_CONNECTIONS {
            return None;
        }
        if counted {
            let held = per_address.entry(address).or_insert(0);
            if *held >= CONNECTIONS_PER_ADDRESS {
                return None;
            }
            *held += 1;
        }
        *total += 1;
        Some(Slot {
            open: self.clone(),
            address: counted.then_some(address),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.counts.lock().unwrap_or_else(|p| p.into_inner());
        let (total, per_address) = &mut *counts;
        *total -= 1;
        if let Some(address) = self.address
            && let Some(held) = per_address.get_mut(&address)
        {
            *held -= 1;
            if *held == 0 {
                per_address.remove(&address);
            }
        }
    }
}

/// A request body that fails once [`BODY_READ_TIMEOUT`] has passed since its headers; the
/// handler reading it answers with an error and the connection closes.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    /// Made the first time the body has to be waited for (most requests never wait).
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(inner: Incoming) -> TimedBody {
        TimedBody {
            inner,
            deadline: Instant::now() + BODY_READ_TIMEOUT,
            timer: None,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(format!(
                        "the request's body did not arrive within {} s",
                        BODY_READ_TIMEOUT.as_secs()
                    )
                    .into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_its_share_of_connections_and_gets_them_back() {
        let open = Arc::new(OpenConnections::default());
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let held: Vec<Slot> = (0..CONNECTIONS_PER_ADDRESS)
            .map(|_| open.take(a, true).expect("a slot"))
            .collect();
        assert!(open.take(a, true).is_none(), "one more from a full address");
        let other = open.take(b, true).expect("another address is not held up");
        let proxy = open
            .take(a, false)
            .expect("an uncounted address is not held up");
        drop((other, proxy));
        drop(held);
        assert!(open.take(a, true).is_some());
        assert_eq!(open.counts.lock().unwrap().0, 0, "every slot given back");
    }
}

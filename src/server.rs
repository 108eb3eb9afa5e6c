//! legate's HTTP/1 server: its own accept loop over hyper, so that connections are bounded.
//!
//! - **Connection cap** (`limits.max_connections`): a semaphore permit is taken *before* `accept`,
//!   so beyond the cap new connections wait in the kernel's listen backlog while the open ones keep
//!   being served; one closing lets the next in. legate never runs out of descriptors because of
//!   clients, so `accept` never fails with "Too many open files" on their account.
//! - **Header timeout** (`limits.header_timeout_secs`): a connection must deliver a whole request
//!   head within this time of being accepted, and on a keep-alive connection within this time of
//!   the next request's first byte; otherwise it is dropped (a half-sent request line or headers
//!   trickled slowly do not hold a connection).
//! - **Idle timeout** (`limits.idle_timeout_secs`): a keep-alive connection with no request for
//!   this long after its last response is closed.
//!
//! Both timeouts are enforced in `Watched`, the socket wrapper hyper reads through: while no
//! request is being handled, a read that would wait past the deadline fails instead, and hyper
//! closes the connection. While a request is in flight `limits.request_timeout_secs` (the 408
//! layer of the router) bounds it instead.
//!
//! Graceful shutdown: on the signal the listener is dropped (new connections are refused), every
//! connection is asked to finish its current request and close, and [`run`] returns once all of
//! them have (it gets back every permit).

use std::{
    future::Future,
    io,
    pin::{pin, Pin},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{body::Body, extract::Request, Router};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tower::ServiceExt;

use crate::config::LimitsConfig;

/// The connection limits of `[limits]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// `header_timeout_secs`
    pub header_timeout: Duration,
    /// `idle_timeout_secs`
    pub idle_timeout: Duration,
    /// `max_connections`
    pub max_connections: usize,
}

impl From<&LimitsConfig> for ConnectionLimits {
    fn from(l: &LimitsConfig) -> Self {
        Self {
            header_timeout: Duration::from_secs(l.header_timeout_secs),
            idle_timeout: Duration::from_secs(l.idle_timeout_secs),
            max_connections: l.max_connections.max(1),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then until every connection has closed.
pub(crate) async fn run(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    warn_if_nofile_too_low(limits.max_connections);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    let mut at_cap_logged = false;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if !at_cap_logged {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection cap reached; new connections wait until one closes"
                    );
                    at_cap_logged = true;
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                }
            }
        };
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        if permits.available_permits() > 0 {
            at_cap_logged = false;
        }
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            app.clone(),
            limits,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    drop(stop_rx);
    // Dropping the sender tells every connection to shut down gracefully.
    drop(stop_tx);
    // Every permit back: every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
    Ok(())
}

/// An `accept` error: per-connection ones (the client gave up) are skipped; others (out of
/// descriptors) are logged and retried after a pause so the loop does not spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection until it closes, times out, or shutdown has let it finish.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Watched::new(stream, activity.clone(), limits));
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_flight = InFlight::start(activity.clone());
        let answer = app.clone().oneshot(req.map(Body::new));
        async move {
            let response = answer.await;
            drop(in_flight);
            response
        }
    });
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection closed with an error");
                }
                break;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// What a connection's requests tell its socket: how many are in flight, and a count of the
/// times it went back to idle (so the socket knows a new idle period began).
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    idle_since: AtomicU64,
    /// The connection task, parked on a read while a request was in flight: woken when the
    /// request ends so that the socket arms its idle deadline (hyper would otherwise wait for
    /// the socket alone).
    parked_reader: Mutex<Option<Waker>>,
}

/// A request in flight on a connection; dropping it (answered, or given up) ends it.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.idle_since.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        let parked = self.0.parked_reader.lock().ok().and_then(|mut w| w.take());
        if let Some(waker) = parked {
            waker.wake();
        }
    }
}

/// What the socket is waiting for while no request is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// The rest of a request head (or its first byte, right after accept).
    Head,
    /// The first byte of the next request on a keep-alive connection.
    NextRequest,
}

/// The socket with the header and idle deadlines on its reads.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    waiting: Waiting,
    /// The `Activity::idle_since` count this socket last saw.
    seen_idle: u64,
    deadline: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(inner: TcpStream, activity: Arc<Activity>, limits: ConnectionLimits) -> Self {
        Self {
            inner,
            activity,
            limits,
            waiting: Waiting::Head,
            seen_idle: 0,
            deadline: Box::pin(tokio::time::sleep(limits.header_timeout)),
        }
    }

    fn wait_for(&mut self, waiting: Waiting) {
        self.waiting = waiting;
        let after = match waiting {
            Waiting::Head => self.limits.header_timeout,
            Waiting::NextRequest => self.limits.idle_timeout,
        };
        self.deadline.as_mut().reset(Instant::now() + after);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        // A request in flight: its body is read under `request_timeout_secs`, not here.
        if me.activity.in_flight.load(Ordering::Acquire) > 0 {
            let read = Pin::new(&mut me.inner).poll_read(cx, buf);
            if read.is_pending() {
                if let Ok(mut parked) = me.activity.parked_reader.lock() {
                    *parked = Some(cx.waker().clone());
                }
            }
            return read;
        }
        let idle = me.activity.idle_since.load(Ordering::Acquire);
        if idle != me.seen_idle {
            // A request was answered since the last read: an idle period begins.
            me.seen_idle = idle;
            me.wait_for(Waiting::NextRequest);
        }
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && me.waiting == Waiting::NextRequest {
                    // The next request's first byte: its whole head is due within the timeout.
                    me.wait_for(Waiting::Head);
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        match me.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                let what = match me.waiting {
                    Waiting::Head => "header_timeout_secs: request head not received in time",
                    Waiting::NextRequest => "idle_timeout_secs: keep-alive connection idle",
                };
                tracing::debug!("connection dropped ({what})");
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Descriptors legate keeps besides its client connections (listener, logs, policy watch, JWKS
/// and entity-source HTTP pools, Redis), with room to spare.
pub(crate) const RESERVED_DESCRIPTORS: u64 = 64;

/// Warns at start-up when `max_connections` plus [`RESERVED_DESCRIPTORS`] is above the soft
/// `nofile` limit: then `accept` could fail before the cap is reached.
fn warn_if_nofile_too_low(max_connections: usize) {
    let Some(limit) = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| soft_nofile(&t))
    else {
        return;
    };
    let needed = max_connections as u64 + RESERVED_DESCRIPTORS;
    if needed > limit {
        tracing::warn!(
            nofile = limit,
            needed,
            "the open-files limit (nofile) is below limits.max_connections + {RESERVED_DESCRIPTORS}; \
             raise it (ulimit -n) or lower limits.max_connections"
        );
    }
}

/// The soft "Max open files" limit in the text of `/proc/self/limits` (`None` when unlimited).
fn soft_nofile(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_nofile_is_read_from_proc_self_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             63457                63457                processes\n\
                    Max open files            1024                 524288               files\n";
        assert_eq!(soft_nofile(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(soft_nofile(unlimited), None);
        assert_eq!(soft_nofile("nothing here"), None);
    }
}

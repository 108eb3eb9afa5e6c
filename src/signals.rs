//! Process signals: `shutdown()` resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT;
//! `spawn_sighup` forwards SIGHUP into the policy reload channel.

use tokio::sync::mpsc;

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
///
/// The handlers are installed when this is called, not when the future is first polled: a SIGTERM
/// that arrives between "listening" and the first poll must still mean a graceful stop, not the
/// default action (killing the process). Call it inside the runtime.
pub(crate) fn shutdown() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            let (mut term, mut int) = match (term, int) {
                (Ok(t), Ok(i)) => (t, i),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
                    return std::future::pending().await;
                }
            };
            tokio::select! {
                _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
                _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received, shutting down");
    }
}

/// Sends a unit on `tx` for every SIGHUP. The handler is installed before this returns, so a SIGHUP
/// sent once the server answers reloads instead of killing the process. Must run inside the runtime.
pub(crate) fn spawn_sighup(tx: mpsc::Sender<()>) {
    #[cfg(unix)]
    {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        tokio::spawn(async move {
            loop {
                // Ends with the reloader (the server stopped), not at the next SIGHUP.
                tokio::select! {
                    _ = tx.closed() => return,
                    got = hup.recv() => if got.is_none() { return },
                }
                tracing::info!("SIGHUP received, reloading policies");
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        });
    }
}

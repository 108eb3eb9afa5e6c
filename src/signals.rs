//! Process signals: `shutdown()` resolves on SIGTERM (how Kubernetes stops a pod) or SIGINT;
//! `spawn_sighup` forwards SIGHUP into the policy reload channel.

use tokio::sync::mpsc;

/// Resolves when the process is asked to stop.
pub async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// Sends a unit on `tx` for every SIGHUP. The handler is installed before this returns, so a SIGHUP
/// sent once the server answers reloads instead of killing the process. Must run inside the runtime.
pub fn spawn_sighup(tx: mpsc::Sender<()>) {
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

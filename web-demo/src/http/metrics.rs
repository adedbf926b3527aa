//! Prometheus `/metrics` for the native crawls: staunch's `MetricsObserver`
//! feeds the `metrics` facade, metrics-exporter-prometheus (no features: no
//! HTTP listener, push gateway or TLS of its own) renders it, and a small
//! hyper server on tokio answers scrapes.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

/// Installs the Prometheus recorder as the process's global `metrics`
/// recorder and returns its handle.
///
/// # Errors
///
/// A message if a global recorder is already installed.
pub fn install() -> Result<PrometheusHandle, String> {
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))
}

/// Binds `addr` (loopback only) and serves `GET /metrics` from `handle`
/// until the returned task is aborted. Must be called inside tokio.
///
/// # Errors
///
/// A message for a non-loopback address or a bind error.
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--metrics-addr must be a loopback address such as 127.0.0.1:9100, got {addr}"
        ));
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let handle = handle.clone();
                    async move {
                        let (status, body) = if request.uri().path() == "/metrics" {
                            (StatusCode::OK, handle.render())
                        } else {
                            (
                                StatusCode::NOT_FOUND,
                                "not found; scrape /metrics".to_owned(),
                            )
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok((bound, task))
}

//! Native HTTP clients behind [`HttpClient`]: reqwest on tokio, and a small
//! HTTP/1.1 GET client over async-net for smol.
//!
//! Why the smol client is hand-written: the service speaks plain HTTP/1.1
//! on 127.0.0.1, so one `GET` with `Connection: close` and a read to the end
//! is the whole protocol the lab needs; hyper over smol would add hyper's
//! client half, smol-hyper and a connection task per request for nothing
//! the lab uses. Dropping its future drops the socket, which closes the
//! connection: that is how a timeout or a cancelled crawl reaches the
//! server (its abort counter proves it).

use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};

use super::{HttpClient, HttpError, Reply};

/// reqwest (no TLS, no default features), for crawls on tokio. Dropping
/// the future drops the request, and hyper closes its connection.
#[derive(Debug, Clone, Default)]
pub struct ReqwestClient(reqwest::Client);

impl HttpClient for ReqwestClient {
    async fn get(&self, url: &str) -> Result<Reply, HttpError> {
        let response = self
            .0
            .get(url)
            .send()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        let body = response
            .text()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// A one-request-per-connection HTTP/1.1 GET client over async-net, for
/// crawls on smol (see the module docs for why).
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolClient;

impl HttpClient for SmolClient {
    async fn get(&self, url: &str) -> Result<Reply, HttpError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| HttpError::Transport(format!("only http:// URLs, got {url}")))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let mut stream = async_net::TcpStream::connect(authority)
            .await
            .map_err(|e| HttpError::Transport(format!("connecting to {authority}: {e}")))?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        parse_response(&String::from_utf8_lossy(&raw))
    }
}

/// Parses a whole `Connection: close` HTTP/1.1 response.
fn parse_response(text: &str) -> Result<Reply, HttpError> {
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        HttpError::Transport("the connection closed before the headers ended".into())
    })?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::Transport("no status line".into()))?;
    let retry_after = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .map(Duration::from_secs);
    Ok(Reply {
        status,
        retry_after,
        body: body.to_owned(),
    })
}

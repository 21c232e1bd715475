//! Owns the minimal HTTP/1.1 client used everywhere in the bench: one
//! keep-alive hyper 1 connection over a `TcpStream` with TCP_NODELAY, plus
//! pre-built request templates so the load generator does little work per
//! request.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::dpop::ProofPool;

/// One HTTP/1.1 keep-alive connection to `addr`.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: JoinHandle<()>,
}

impl Conn {
    /// Opens a TCP connection (TCP_NODELAY on) and performs the HTTP/1
    /// handshake; the connection driver runs on its own task.
    pub async fn connect(addr: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1 handshake")?;
        let driver = tokio::spawn(async move {
            // The connection ends when the server closes it or the sender is
            // dropped; the error (if any) surfaces through `send` instead.
            let _ = connection.await;
        });
        Ok(Self { sender, driver })
    }

    /// True when the server closed the connection (e.g. `Connection: close`).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one request and reads the whole response body.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        self.sender.ready().await.context("connection not ready")?;
        let resp = self
            .sender
            .send_request(req)
            .await
            .context("sending request")?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        Ok((status, body))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// A pre-built request: method, path, headers and a set of bodies cycled
/// through by index, and optionally one header whose values are each sent once
/// (DPoP proofs). Building a request from it is a few cheap clones.
pub struct RequestTemplate {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bodies: Vec<Bytes>,
    once: Option<(HeaderName, Arc<ProofPool>)>,
}

impl RequestTemplate {
    /// A request template for `method path` against `addr`, with a `Host`
    /// header and the given bodies (at least one; an empty body is used if
    /// `bodies` is empty).
    pub fn new(method: Method, addr: SocketAddr, path: &str, bodies: Vec<Bytes>) -> Result<Self> {
        let uri: Uri = path
            .parse()
            .with_context(|| format!("invalid path {path}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&addr.to_string()).context("host header")?,
        );
        let bodies = if bodies.is_empty() {
            vec![Bytes::new()]
        } else {
            bodies
        };
        Ok(Self {
            method,
            uri,
            headers,
            bodies,
            once: None,
        })
    }

    /// A `POST path` with `Content-Type: application/x-www-form-urlencoded`.
    pub fn form_post(addr: SocketAddr, path: &str, bodies: Vec<Bytes>) -> Result<Self> {
        Self::new(Method::POST, addr, path, bodies)?.with_header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
    }

    /// Adds (replaces) one header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Result<Self> {
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Adds HTTP Basic authentication with the given credentials.
    pub fn with_basic_auth(self, user: &str, password: &str) -> Result<Self> {
        let value = basic_auth(user, password)?;
        self.with_header(AUTHORIZATION, value)
    }

    /// Sends header `name` with a value taken from `pool` on each request built with
    /// [`Self::next`], each value once.
    pub fn with_once_header(mut self, name: HeaderName, pool: Arc<ProofPool>) -> Self {
        self.once = Some((name, pool));
        self
    }

    /// Number of distinct bodies this template cycles through.
    pub fn body_count(&self) -> usize {
        self.bodies.len()
    }

    /// Builds the request using body number `index % body_count()`.
    pub fn build(&self, index: usize) -> Request<Full<Bytes>> {
        let body = self.bodies[index % self.bodies.len()].clone();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    /// Like [`Self::build`], with the header sent once per value when there is one; `None`
    /// when its values are spent.
    pub fn next(&self, index: usize) -> Option<Request<Full<Bytes>>> {
        let mut req = self.build(index);
        if let Some((name, pool)) = &self.once {
            req.headers_mut().insert(name.clone(), pool.take()?);
        }
        Some(req)
    }
}

/// `Authorization: Basic base64(user:password)`.
pub fn basic_auth(user: &str, password: &str) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).context("basic auth header")
}

/// Sends a single request on a fresh connection (for setup and polling, not
/// for load).
pub async fn one_shot(addr: SocketAddr, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
    let mut conn = Conn::connect(addr).await?;
    conn.send(req).await
}

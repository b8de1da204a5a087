//! A front that passes requests through to a Distribution registry, except those it was told to
//! fail: answered with a status (503, 429…) a number of times, or their response body cut off
//! half way with the connection dropped, as a flaky network or an overloaded ECR would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, HOST, LOCATION};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::front::{relayed_headers, remove_hop_by_hop};
use super::registry::Registry;

pub struct FaultyFront {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    registry_url: String,
    front_url: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    served: AtomicUsize,
}

/// Requests whose method is `method` and whose path contains `path` get `fault`, `remaining`
/// more times.
struct Rule {
    method: Method,
    path: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Clone, Copy)]
enum Fault {
    Status(StatusCode),
    CutBody,
}

impl FaultyFront {
    /// Serves in front of `registry` until dropped. Needs a multi-threaded runtime when the test
    /// also waits on the binary.
    pub async fn start(registry: &Registry) -> FaultyFront {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the faulty front");
        let shared = Arc::new(Shared {
            registry_url: registry.url(),
            front_url: format!(
                "http://{}",
                listener.local_addr().expect("listener address")
            ),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build an HTTP client"),
            rules: Mutex::new(Vec::new()),
            served: AtomicUsize::new(0),
        });
        let app = Router::new()
            .fallback(front_request)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the faulty front")
        });
        FaultyFront { shared, server }
    }

    pub fn url(&self) -> String {
        self.shared.front_url.clone()
    }

    /// Answers the next `times` `method` requests whose path contains `path` with `status`
    /// (`usize::MAX` times: until [`FaultyFront::clear`]).
    pub fn answer(&self, method: &str, path: &str, status: u16, times: usize) {
        let status = StatusCode::from_u16(status).expect("an HTTP status");
        self.add(method, path, Fault::Status(status), times);
    }

    /// Drops the connection half way through the body of the next `method` request whose path
    /// contains `path`.
    pub fn cut_body_once(&self, method: &str, path: &str) {
        self.add(method, path, Fault::CutBody, 1);
    }

    /// Every request passes through from now on.
    pub fn clear(&self) {
        self.shared.rules.lock().expect("the rules").clear();
    }

    /// How many requests were failed so far.
    pub fn faults_served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }

    fn add(&self, method: &str, path: &str, fault: Fault, times: usize) {
        self.shared.rules.lock().expect("the rules").push(Rule {
            method: method.parse().expect("an HTTP method"),
            path: path.to_string(),
            fault,
            remaining: times,
        });
    }
}

impl Drop for FaultyFront {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    /// The fault due for this request, if any, counted as served.
    fn fault_for(&self, method: &Method, path: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().expect("the rules");
        let rule = rules.iter_mut().find(|rule| {
            rule.remaining > 0 && rule.method == method && path.contains(&rule.path)
        })?;
        rule.remaining -= 1;
        self.served.fetch_add(1, Ordering::SeqCst);
        Some(rule.fault)
    }
}

async fn front_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let fault = shared.fault_for(request.method(), request.uri().path());
    if let Some(Fault::Status(status)) = fault {
        let body = format!(
            r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault: {status}"}}]}}"#
        );
        return (status, [(CONTENT_TYPE, "application/json")], body).into_response();
    }
    let (parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut headers = parts.headers.clone();
    headers.remove(HOST);
    remove_hop_by_hop(&mut headers);
    let upstream = shared
        .client
        .request(
            parts.method,
            format!("{}{path_and_query}", shared.registry_url),
        )
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("faulty front: registry failed: {error}"),
            )
                .into_response();
        }
    };
    let status = upstream.status();
    let headers = relayed_headers(upstream.headers(), &shared.registry_url, &shared.front_url);
    let body = match fault {
        Some(Fault::CutBody) => {
            // Content-Length stays the whole body's: the client sees the connection end early.
            let bytes = upstream.bytes().await.unwrap_or_default();
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            Body::from_stream(futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other("injected fault: connection dropped")),
            ]))
        }
        _ => Body::from_stream(upstream.bytes_stream()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

//! A front that passes requests through to a server — a Distribution registry, or moto standing in
//! for AWS — except those it was told to fail: answered with a status (503, 429…) a number of times,
//! their response body cut off half way with the connection dropped, never answered, their response
//! body stopped half way with the connection left open, or their request body taken slowly — as a
//! flaky network, an overloaded ECR or a slow link between accounts would. For SQS, a batch call can be
//! answered with every entry failed, which moto cannot be made to do; and an AWS operation moto lacks can be
//! answered with a given JSON body (ECS's deployment history: [`FaultyFront::answer_operation`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::front::{relayed_headers, remove_hop_by_hop};

pub struct FaultyFront {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    upstream_url: String,
    front_url: String,
    client: reqwest::Client,
    rules: Mutex<Vec<Rule>>,
    served: AtomicUsize,
    /// Every AWS call that came through, as `service operation`.
    calls: Mutex<Vec<String>>,
}

/// Requests whose method is `method` and whose path (with the query), or for an AWS call its
/// operation (`X-Amz-Target`), contains `path` get `fault`, `remaining` more times.
struct Rule {
    method: Method,
    path: String,
    fault: Fault,
    remaining: usize,
}

#[derive(Clone)]
enum Fault {
    Status(StatusCode),
    CutBody,
    /// The request is taken and never answered; its body is never read.
    Hang,
    /// Half the response body is sent, then nothing more, the connection left open.
    StallBody,
    /// The request body is taken `bytes_per_second` at a time, then passed on.
    Throttle {
        bytes_per_second: usize,
    },
    /// Passed on without its `mount` and `from` parameters, as a registry that does not mount would
    /// treat it: an ordinary upload session (202) instead of a mounted blob (201).
    DeclineMount,
    /// Answered 400 with the request's `Authorization` header quoted in the error body, as a
    /// careless registry might.
    EchoAuthorization,
    /// The response body is followed by this many spaces (`usize::MAX`: without end), without a
    /// Content-Length.
    Pad {
        bytes: usize,
    },
    /// Answered here, as SQS answers a batch call none of whose entries it carried out.
    FailEntries,
    /// Answered here, 200 with this JSON body (AWS's JSON protocol).
    Json(String),
}

impl FaultyFront {
    /// Serves in front of the server at `upstream` (a base URL) until dropped. Needs a multi-threaded runtime when the test
    /// also waits on the binary.
    pub async fn start(upstream: &str) -> FaultyFront {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the faulty front");
        let shared = Arc::new(Shared {
            upstream_url: upstream.to_string(),
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
            calls: Mutex::new(Vec::new()),
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

    /// Takes the next `times` `method` requests whose path contains `path` and never answers them.
    pub fn hang(&self, method: &str, path: &str, times: usize) {
        self.add(method, path, Fault::Hang, times);
    }

    /// Sends half of the body of the next `method` request whose path contains `path`, then
    /// nothing more, leaving the connection open.
    pub fn stall_body_once(&self, method: &str, path: &str) {
        self.add(method, path, Fault::StallBody, 1);
    }

    /// Takes the body of the next `method` request whose path contains `path` at
    /// `bytes_per_second`, in pieces a twentieth of a second apart.
    pub fn throttle_once(&self, method: &str, path: &str, bytes_per_second: usize) {
        self.add(method, path, Fault::Throttle { bytes_per_second }, 1);
    }

    /// Follows the response body of the next `method` request whose path contains `path` with
    /// `bytes` spaces (`usize::MAX`: without end), sent without a Content-Length, as a broken or
    /// hostile registry might.
    pub fn pad_once(&self, method: &str, path: &str, bytes: usize) {
        self.add(method, path, Fault::Pad { bytes }, 1);
    }

    /// Answers the next `method` request whose path contains `path` with a 400 quoting its
    /// `Authorization` header.
    pub fn echo_authorization_once(&self, method: &str, path: &str) {
        self.add(method, path, Fault::EchoAuthorization, 1);
    }

    /// Declines every cross-repository mount from now on: each is passed on as a plain upload start.
    pub fn decline_mounts(&self) {
        self.add("POST", "mount=", Fault::DeclineMount, usize::MAX);
    }

    /// Every request passes through from now on.
    pub fn clear(&self) {
        self.shared.rules.lock().expect("the rules").clear();
    }

    /// How many requests were failed so far.
    pub fn faults_served(&self) -> usize {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// The AWS calls that came through, in order, each as `service operation`: the service its
    /// signature is scoped to (`ecs`, `monitoring`, …) and the operation its `X-Amz-Target` names
    /// (none for the query protocol's, such as CloudWatch's, whose operation is in the body).
    pub fn aws_calls(&self) -> Vec<String> {
        self.shared.calls.lock().expect("the calls").clone()
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
        Some(rule.fault.clone())
    }
}

async fn front_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |target| target.as_str());
    // Every AWS call is a POST to `/`: what tells them apart is the operation.
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    // `Credential=<key>/<date>/<region>/<service>/aws4_request`: a registry's requests have none.
    let service = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split("Credential=").nth(1))
        .and_then(|credential| credential.split('/').nth(3));
    if let Some(service) = service {
        let operation = operation.rsplit('.').next().unwrap_or_default();
        shared
            .calls
            .lock()
            .expect("the calls")
            .push(format!("{service} {operation}").trim_end().to_string());
    }
    let fault = shared.fault_for(request.method(), &format!("{target} {operation}"));
    if let Some(Fault::FailEntries) = fault {
        return failed_entries(request).await;
    }
    if let Some(Fault::Json(body)) = &fault {
        return (
            StatusCode::OK,
            [(CONTENT_TYPE, "application/x-amz-json-1.1")],
            body.clone(),
        )
            .into_response();
    }
    if let Some(Fault::Status(status)) = fault {
        let body = format!(
            r#"{{"errors":[{{"code":"UNAVAILABLE","message":"injected fault: {status}"}}]}}"#
        );
        return (status, [(CONTENT_TYPE, "application/json")], body).into_response();
    }
    if let Some(Fault::EchoAuthorization) = fault {
        let authorization = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let body = serde_json::json!({"errors": [{"code": "BAD_REQUEST",
            "message": format!("cannot handle request with Authorization: {authorization}")}]});
        return (
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    if let Some(Fault::Hang) = fault {
        // Held until the client gives up (and the connection closes) or the front is dropped.
        let _held = request;
        return std::future::pending().await;
    }
    let (parts, body) = request.into_parts();
    let body = match &fault {
        Some(Fault::Throttle { bytes_per_second }) => throttled(body, *bytes_per_second),
        _ => reqwest::Body::wrap_stream(body.into_data_stream()),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let declined;
    let path_and_query = match &fault {
        Some(Fault::DeclineMount) => {
            declined = path_and_query.split('?').next().unwrap_or("/").to_string();
            declined.as_str()
        }
        _ => path_and_query,
    };
    let mut headers = parts.headers.clone();
    headers.remove(HOST);
    remove_hop_by_hop(&mut headers);
    let upstream = shared
        .client
        .request(
            parts.method,
            format!("{}{path_and_query}", shared.upstream_url),
        )
        .headers(headers)
        .body(body)
        .send()
        .await;
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err(error) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("faulty front: upstream failed: {error}"),
            )
                .into_response();
        }
    };
    let status = upstream.status();
    let mut headers = relayed_headers(upstream.headers(), &shared.upstream_url, &shared.front_url);
    let body = match &fault {
        Some(Fault::CutBody) => {
            // Content-Length stays the whole body's: the client sees the connection end early.
            let bytes = upstream.bytes().await.unwrap_or_default();
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            Body::from_stream(futures_util::stream::iter([
                Ok(half),
                Err(std::io::Error::other("injected fault: connection dropped")),
            ]))
        }
        Some(Fault::StallBody) => {
            let bytes = upstream.bytes().await.unwrap_or_default();
            let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
            let sent = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]);
            Body::from_stream(sent.chain(futures_util::stream::pending()))
        }
        Some(Fault::Pad { bytes }) => {
            let bytes = *bytes;
            headers.remove(CONTENT_LENGTH);
            let padding = (0..bytes)
                .step_by(64 << 10)
                .map(move |start| Ok(Bytes::from(vec![b' '; (64 << 10).min(bytes - start)])));
            let whole = upstream
                .bytes_stream()
                .map(|chunk| chunk.map_err(std::io::Error::other));
            Body::from_stream(whole.chain(futures_util::stream::iter(padding)))
        }
        _ => Body::from_stream(upstream.bytes_stream()),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A request body read at `bytes_per_second`: pieces of a twentieth of that, each after a pause of a
/// twentieth of a second. The client's sending slows down with it once the socket buffers are full.
fn throttled(body: Body, bytes_per_second: usize) -> reqwest::Body {
    let piece = (bytes_per_second / 20).max(1);
    let pieces = body.into_data_stream().flat_map(move |chunk| {
        let parts: Vec<Result<Bytes, axum::Error>> = match chunk {
            Ok(bytes) => (0..bytes.len())
                .step_by(piece)
                .map(|start| Ok(bytes.slice(start..(start + piece).min(bytes.len()))))
                .collect(),
            Err(error) => vec![Err(error)],
        };
        futures_util::stream::iter(parts)
    });
    let paced = pieces.then(|part| async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        part
    });
    reqwest::Body::wrap_stream(paced)
}

impl FaultyFront {
    /// Answers every call of the AWS operation `operation` (its `X-Amz-Target`, e.g.
    /// `AmazonEC2ContainerServiceV20141113.ListServiceDeployments`) with `body`: a stand-in for an
    /// operation moto does not have.
    pub fn answer_operation(&self, operation: &str, body: serde_json::Value) {
        self.add("POST", operation, Fault::Json(body.to_string()), usize::MAX);
    }

    /// Answers the next SQS `ChangeMessageVisibilityBatch` here, changing nothing, with each of its
    /// entries failed as SQS fails one whose message it no longer knows (`ReceiptHandleIsInvalid`).
    pub fn fail_visibility_changes_once(&self) {
        self.add(
            "POST",
            "AmazonSQS.ChangeMessageVisibilityBatch",
            Fault::FailEntries,
            1,
        );
    }
}

/// SQS's answer (JSON protocol) to a batch request none of whose entries was carried out.
async fn failed_entries(request: Request) -> Response {
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .expect("read the batch request");
    let batch: serde_json::Value = serde_json::from_slice(&body).expect("a JSON batch request");
    let failed: Vec<serde_json::Value> = batch["Entries"]
        .as_array()
        .expect("the batch's entries")
        .iter()
        .map(|entry| {
            serde_json::json!({
                "Id": entry["Id"],
                "SenderFault": true,
                "Code": "ReceiptHandleIsInvalid",
                "Message": "injected fault: the receipt handle is invalid",
            })
        })
        .collect();
    let answer = serde_json::json!({"Successful": [], "Failed": failed});
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "application/x-amz-json-1.0")],
        answer.to_string(),
    )
        .into_response()
}

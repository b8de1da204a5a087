//! A front that makes a Distribution registry answer blob downloads the way ECR does: with a
//! `307` to a presigned S3 URL. The stand-in for S3 refuses, as S3 does, a request that carries
//! both the presigned query and an `Authorization` header, and counts such leaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RANGE};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::registry::{Registry, USERNAME};

/// Headers that describe one connection, not the message, and so are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// S3's answer to a presigned URL that also carries an `Authorization` header.
const S3_AUTH_CONFLICT: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidArgument</Code>\
    <Message>Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query \
    string parameter or the Authorization header should be specified</Message></Error>";

pub struct RedirectingFront {
    shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
}

struct Shared {
    registry_url: String,
    front_url: String,
    storage_url: String,
    password: Option<String>,
    client: reqwest::Client,
    redirects: AtomicUsize,
    leaks: AtomicUsize,
}

impl RedirectingFront {
    /// Serves in front of `registry` until dropped. Needs a multi-threaded runtime when the test
    /// also waits on the binary.
    pub async fn start(registry: &Registry) -> RedirectingFront {
        let front = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the front");
        let storage = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the storage");
        let address = |listener: &TcpListener| {
            format!(
                "http://{}",
                listener.local_addr().expect("listener address")
            )
        };
        let shared = Arc::new(Shared {
            registry_url: registry.url(),
            front_url: address(&front),
            storage_url: address(&storage),
            password: registry.password.clone(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build an HTTP client"),
            redirects: AtomicUsize::new(0),
            leaks: AtomicUsize::new(0),
        });
        let front_app = Router::new()
            .fallback(front_request)
            .with_state(shared.clone());
        let storage_app = Router::new()
            .fallback(storage_request)
            .with_state(shared.clone());
        let servers = vec![
            tokio::spawn(async move {
                axum::serve(front, front_app)
                    .await
                    .expect("serve the front")
            }),
            tokio::spawn(async move {
                axum::serve(storage, storage_app)
                    .await
                    .expect("serve the storage")
            }),
        ];
        RedirectingFront { shared, servers }
    }

    pub fn url(&self) -> String {
        self.shared.front_url.clone()
    }

    /// How many blob GETs were answered with a redirect.
    pub fn redirects_served(&self) -> usize {
        self.shared.redirects.load(Ordering::SeqCst)
    }

    /// How many requests reached the presigned URL with an `Authorization` header.
    pub fn authorization_leaks(&self) -> usize {
        self.shared.leaks.load(Ordering::SeqCst)
    }
}

impl Drop for RedirectingFront {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// `/v2/<repo>/blobs/sha256:<hex>` → (repo, digest); upload URLs are not blobs.
fn blob_path(path: &str) -> Option<(&str, &str)> {
    let (repo, digest) = path.strip_prefix("/v2/")?.rsplit_once("/blobs/")?;
    digest.starts_with("sha256:").then_some((repo, digest))
}

async fn front_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.method() == Method::GET
        && let Some((repo, digest)) = blob_path(request.uri().path())
    {
        // Like ECR, check the credentials and the blob before handing out a URL.
        let check = shared
            .forward(
                Method::HEAD,
                request.uri(),
                request.headers(),
                reqwest::Body::from(""),
            )
            .await;
        if check
            .as_ref()
            .is_ok_and(|check| check.status() == StatusCode::OK)
        {
            shared.redirects.fetch_add(1, Ordering::SeqCst);
            let location = format!(
                "{}/{repo}/blobs/{digest}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=fake",
                shared.storage_url
            );
            return (StatusCode::TEMPORARY_REDIRECT, [(LOCATION, location)]).into_response();
        }
    }
    let (parts, body) = request.into_parts();
    let body = reqwest::Body::wrap_stream(body.into_data_stream());
    let response = shared
        .forward(parts.method, &parts.uri, &parts.headers, body)
        .await;
    shared.relay(response)
}

async fn storage_request(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.headers().contains_key(AUTHORIZATION) {
        shared.leaks.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_REQUEST,
            [(CONTENT_TYPE, "application/xml")],
            S3_AUTH_CONFLICT,
        )
            .into_response();
    }
    let Some((repo, digest)) = request.uri().path()[1..].rsplit_once("/blobs/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut upstream = shared
        .client
        .get(format!("{}/v2/{repo}/blobs/{digest}", shared.registry_url));
    if let Some(password) = &shared.password {
        upstream = upstream.basic_auth(USERNAME, Some(password));
    }
    if let Some(range) = request.headers().get(RANGE) {
        upstream = upstream.header(RANGE, range.clone());
    }
    shared.relay(upstream.send().await)
}

impl Shared {
    /// Sends the request on to the registry, as it came.
    async fn forward(
        &self,
        method: Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: reqwest::Body,
    ) -> reqwest::Result<reqwest::Response> {
        let path_and_query = uri.path_and_query().map_or("/", |path| path.as_str());
        let mut forwarded = headers.clone();
        forwarded.remove(axum::http::header::HOST);
        remove_hop_by_hop(&mut forwarded);
        self.client
            .request(method, format!("{}{path_and_query}", self.registry_url))
            .headers(forwarded)
            .body(body)
            .send()
            .await
    }

    /// The registry's response as the front's, with Locations pointing at the front.
    fn relay(&self, response: reqwest::Result<reqwest::Response>) -> Response {
        let response = match response {
            Ok(response) => response,
            Err(error) => {
                return (
                    StatusCode::BAD_GATEWAY,
                    format!("front: registry failed: {error}"),
                )
                    .into_response();
            }
        };
        let status = response.status();
        let headers = relayed_headers(response.headers(), &self.registry_url, &self.front_url);
        let mut relayed = Response::new(Body::from_stream(response.bytes_stream()));
        *relayed.status_mut() = status;
        *relayed.headers_mut() = headers;
        relayed
    }
}

/// A registry response's headers as a front in front of it sends them on: without the hop-by-hop ones, and
/// with a `Location` into the registry pointing at the front instead.
pub(super) fn relayed_headers(
    headers: &HeaderMap,
    registry_url: &str,
    front_url: &str,
) -> HeaderMap {
    let mut headers = headers.clone();
    remove_hop_by_hop(&mut headers);
    if let Some(location) = headers.get(LOCATION).and_then(|value| value.to_str().ok())
        && let Some(rest) = location.strip_prefix(registry_url)
    {
        let rewritten = format!("{front_url}{rest}");
        headers.insert(LOCATION, rewritten.parse().expect("a valid Location"));
    }
    headers
}

pub(super) fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(name));
    }
}

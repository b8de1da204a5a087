//! Blobs: existence checks and the streamed copy from one registry into another.
//!
//! A blob is never held whole in memory: the source GET's body is piped into the target's upload as it
//! arrives, hashed on the way. The last chunk is held back until the hash and size are proven, so the target
//! never receives a complete body whose digest is wrong.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{Method, Response, StatusCode, header};
use sha2::{Digest as _, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use super::digest::Digest;
use super::error::RegistryError;
use super::manifest::Descriptor;
use super::progress::Progress;
use super::transport::Registry;
use crate::outside::error_chain;

/// At most this many redirects are followed for one blob GET (ECR needs one, to S3).
const MAX_REDIRECTS: usize = 5;

impl Registry {
    pub async fn has_blob(&self, repository: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let what = format!("checking blob {digest} in {repository}");
        let url = self.url(repository, &format!("blobs/{digest}"));
        let response = self
            .send(&what, || self.request(Method::HEAD, url.clone()))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.failure(&what, repository, response).await),
        }
    }

    /// Opens a blob for reading. Redirects are followed by hand so that the registry's credentials are never
    /// sent to the redirect target: a presigned storage URL carries its own authorization, and S3 refuses a
    /// request that carries both. One try: [`copy_blob`] retries the blob as a whole.
    async fn open_blob(
        &self,
        repository: &str,
        blob: &Descriptor,
    ) -> Result<Response, RegistryError> {
        let what = format!("reading blob {} from {repository}", blob.digest);
        let url = self.url(repository, &format!("blobs/{}", blob.digest));
        let mut response = self
            .send_once(&what, || self.request(Method::GET, url.clone()))
            .await?;
        for _ in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                break;
            }
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| response.url().join(l).ok())
                .ok_or_else(|| RegistryError::Status {
                    what: what.clone(),
                    host: self.host.clone(),
                    status: response.status(),
                    detail: ": redirect without a usable Location".into(),
                })?;
            tracing::debug!(blob = %blob.digest, host = location.host_str(), "following blob redirect");
            response = self
                .send_once(&what, || self.http().get(location.clone()))
                .await?;
        }
        if !response.status().is_success() {
            return Err(self.failure(&what, repository, response).await);
        }
        if let Some(length) = response.content_length()
            && length != blob.size
        {
            return Err(RegistryError::Corrupt {
                what,
                host: self.host.clone(),
                detail: format!(
                    "the manifest says {} bytes, the registry sends {length}",
                    blob.size
                ),
            });
        }
        Ok(response)
    }

    /// Opens an upload session and returns where to send the bytes. One try, like [`Registry::open_blob`].
    async fn start_upload(&self, repository: &str) -> Result<Url, RegistryError> {
        let what = format!("starting an upload to {repository}");
        let url = self.url(repository, "blobs/uploads/");
        let response = self
            .send_once(&what, || {
                self.request(Method::POST, url.clone())
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.failure(&what, repository, response).await);
        }
        location_of(&response).ok_or_else(|| RegistryError::Status {
            what,
            host: self.host.clone(),
            status: response.status(),
            detail: ": upload session without a Location".into(),
        })
    }

    /// Asks the registry to mount `digest` into `repository` from `from`, another repository of the same
    /// registry: `true` when mounted (201), no byte moved. Any other answer declines — a registry without
    /// mounting (ECR unless the account enables BLOB_MOUNTING) opens an upload session instead (202), which is
    /// cancelled here — and the blob is copied as usual.
    pub async fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let what = format!("mounting blob {digest} into {repository} from {from}");
        let mut url = self.url(repository, "blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let response = self
            .send(&what, || {
                self.request(Method::POST, url.clone())
                    .header(header::CONTENT_LENGTH, "0")
            })
            .await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            status => {
                tracing::debug!(blob = %digest, %status, "mount declined; copying the bytes");
                if let Some(session) = location_of(&response) {
                    self.cancel_upload(session).await;
                }
                Ok(false)
            }
        }
    }

    /// Abandons an upload session so that the registry can free it; a failure here changes nothing.
    async fn cancel_upload(&self, location: Url) {
        let cancel = self.request(Method::DELETE, location).send();
        let _ = tokio::time::timeout(self.stall, cancel).await;
    }
}

/// Where an answer's `Location` header points, relative to the request.
fn location_of(response: &Response) -> Option<Url> {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|l| response.url().join(l).ok())
}

/// Copies one blob the target lacks. Transient failures restart the blob from the beginning (a new source GET
/// and a new upload session), up to the target's retry policy. Returns the bytes moved.
///
/// Each attempt takes one of `transfers` while its bytes are moving and gives it back as soon as the last byte
/// is sent: a registry's answer to a finished upload can take a while (Distribution syncs the file to disk,
/// ECR completes its storage), and the next blob's transfer need not wait for it.
pub async fn copy_blob(
    source: &Registry,
    source_repository: &str,
    target: &Registry,
    target_repository: &str,
    blob: &Descriptor,
    transfers: &Arc<Semaphore>,
    progress: &Arc<Progress>,
) -> Result<u64, RegistryError> {
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let transfer = transfers
            .clone()
            .acquire_owned()
            .await
            .expect("the transfer semaphore is never closed");
        let moved = Arc::new(AtomicU64::new(0));
        let attempt_result = stream_blob(
            source,
            source_repository,
            target,
            target_repository,
            blob,
            transfer,
            Counted {
                progress: progress.clone(),
                attempt: moved.clone(),
            },
        );
        let result = attempt_result.await;
        if result.is_err() {
            progress.take_back(moved.load(Ordering::Relaxed));
        }
        match result {
            Ok(()) => {
                tracing::debug!(blob = %blob.digest, bytes = blob.size, attempt, ms = started.elapsed().as_millis() as u64, "copied blob");
                return Ok(blob.size);
            }
            Err(e) if e.is_transient() && attempt < target.retry.attempts => {
                let wait = target.retry.delay(attempt, None);
                tracing::warn!(blob = %blob.digest, error = %e, ?wait, "blob copy failed; starting it again");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt: source GET piped into a single PUT of the whole blob. ECR drops every PATCH chunk after the
/// first (aws/containers-roadmap#2831), so the upload is one request whatever the size.
async fn stream_blob(
    source: &Registry,
    source_repository: &str,
    target: &Registry,
    target_repository: &str,
    blob: &Descriptor,
    transfer: OwnedSemaphorePermit,
    counted: Counted,
) -> Result<(), RegistryError> {
    // Both round trips at once: neither needs the other's answer.
    let (location, body) = tokio::join!(
        target.start_upload(target_repository),
        source.open_blob(source_repository, blob)
    );
    let location = location?;
    let body = match body {
        Ok(response) => response,
        Err(e) => {
            target.cancel_upload(location).await;
            return Err(e);
        }
    };
    let verdict = Arc::new(Mutex::new(None));
    let watch = Watch::new();
    let verifying = Verifying::new(body.bytes_stream(), blob, verdict.clone(), watch.clone())
        .holding(transfer)
        .counting(counted);
    let mut put_url = location.clone();
    put_url
        .query_pairs_mut()
        .append_pair("digest", &blob.digest.to_string());
    let what = format!("uploading blob {} to {target_repository}", blob.digest);
    let upload = target
        .request(Method::PUT, put_url)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, blob.size)
        .body(reqwest::Body::wrap_stream(verifying))
        .send();
    // The whole upload may take far longer than the stall limit; only a pause that long gives it up.
    let sent = tokio::select! {
        sent = upload => sent.map_err(|e| target.network(&what, &e)),
        phase = watch.stalled(target.stall) => Err(phase.error(source, target, &what)),
    };
    // A verdict from the stream explains a failed PUT better than the transport error it caused.
    let failure = verdict.lock().expect("verdict lock").take();
    if let Some(failure) = failure {
        target.cancel_upload(location).await;
        return Err(failure.into_error(source, &what));
    }
    match sent {
        Ok(response) if response.status() == StatusCode::CREATED => Ok(()),
        Ok(response) => Err(target.failure(&what, target_repository, response).await),
        Err(e) => {
            target.cancel_upload(location).await;
            Err(e)
        }
    }
}

/// Where the bytes a blob attempt hands on are counted: the copy's progress, and the attempt's own count
/// (given back from the progress if the attempt fails and the blob starts again).
struct Counted {
    progress: Arc<Progress>,
    attempt: Arc<AtomicU64>,
}

impl Counted {
    fn add(&self, bytes: u64) {
        self.progress.add_done(bytes);
        self.attempt.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Where a streamed blob copy stands and since when, for the watchdog that gives up a stalled one.
#[derive(Clone)]
struct Watch(Arc<Mutex<(Instant, Phase)>>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// The target took every byte so far; the source owes the next.
    Source,
    /// A chunk waits for the target to take it.
    Target,
    /// The whole blob is sent; the target owes its answer.
    Answer,
}

impl Watch {
    fn new() -> Watch {
        Watch(Arc::new(Mutex::new((Instant::now(), Phase::Target))))
    }

    fn enter(&self, phase: Phase) {
        *self.0.lock().expect("watch lock") = (Instant::now(), phase);
    }

    /// Resolves with the phase in which nothing moved for `stall`; never, while data keeps moving.
    async fn stalled(&self, stall: Duration) -> Phase {
        loop {
            let (since, phase) = *self.0.lock().expect("watch lock");
            if since.elapsed() >= stall {
                return phase;
            }
            tokio::time::sleep_until(since + stall).await;
        }
    }
}

impl Phase {
    fn error(self, source: &Registry, target: &Registry, what: &str) -> RegistryError {
        let (what, host, detail) = match self {
            Phase::Source => (
                format!("{what} (reading the source)"),
                &source.host,
                source.stalled("no data"),
            ),
            Phase::Target => (
                what.to_owned(),
                &target.host,
                target.stalled("took no data"),
            ),
            Phase::Answer => (
                what.to_owned(),
                &target.host,
                target.stalled("no answer after the whole blob was sent"),
            ),
        };
        RegistryError::Network {
            what,
            host: host.clone(),
            detail,
        }
    }
}

enum StreamFailure {
    Mismatch(String),
    Source(String),
}

impl StreamFailure {
    fn into_error(self, source: &Registry, what: &str) -> RegistryError {
        match self {
            StreamFailure::Mismatch(detail) => RegistryError::Corrupt {
                what: what.to_owned(),
                host: source.host.clone(),
                detail,
            },
            StreamFailure::Source(detail) => RegistryError::Network {
                what: format!("{what} (reading the source)"),
                host: source.host.clone(),
                detail,
            },
        }
    }
}

/// Passes a blob's bytes through while counting and hashing them, holding the last chunk back until the
/// whole blob is proven to have the expected size and digest.
struct Verifying<S> {
    inner: S,
    hasher: Sha256,
    seen: u64,
    expected_size: u64,
    expected_digest: Digest,
    held: Option<Bytes>,
    finished: bool,
    verdict: Arc<Mutex<Option<StreamFailure>>>,
    watch: Watch,
    /// Given back once the last byte is handed on (or the stream dropped).
    transfer: Option<OwnedSemaphorePermit>,
    counted: Option<Counted>,
}

impl<S> Verifying<S> {
    fn new(
        inner: S,
        blob: &Descriptor,
        verdict: Arc<Mutex<Option<StreamFailure>>>,
        watch: Watch,
    ) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            seen: 0,
            expected_size: blob.size,
            expected_digest: blob.digest.clone(),
            held: None,
            finished: false,
            verdict,
            watch,
            transfer: None,
            counted: None,
        }
    }

    fn counting(mut self, counted: Counted) -> Self {
        self.counted = Some(counted);
        self
    }

    /// A chunk handed on to the target.
    fn hand_on(&self, chunk: Bytes) -> Poll<Option<std::io::Result<Bytes>>> {
        if let Some(counted) = &self.counted {
            counted.add(chunk.len() as u64);
        }
        Poll::Ready(Some(Ok(chunk)))
    }

    fn holding(mut self, transfer: OwnedSemaphorePermit) -> Self {
        self.transfer = Some(transfer);
        self
    }

    fn fail(&mut self, failure: StreamFailure) -> Poll<Option<std::io::Result<Bytes>>> {
        let message = match &failure {
            StreamFailure::Mismatch(m) | StreamFailure::Source(m) => m.clone(),
        };
        *self.verdict.lock().expect("verdict lock") = Some(failure);
        self.finished = true;
        Poll::Ready(Some(Err(std::io::Error::other(message))))
    }
}

impl<S> Stream for Verifying<S>
where
    S: Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        // Asked for more: the target has taken what it was given, and the source owes the next bytes.
        self.watch.enter(Phase::Source);
        loop {
            match ready!(self.inner.poll_next_unpin(cx)) {
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => {
                    self.seen += chunk.len() as u64;
                    if self.seen > self.expected_size {
                        let detail = format!(
                            "more than the {} bytes the manifest says",
                            self.expected_size
                        );
                        return self.fail(StreamFailure::Mismatch(detail));
                    }
                    self.hasher.update(&chunk);
                    if let Some(previous) = self.held.replace(chunk) {
                        self.watch.enter(Phase::Target);
                        return self.hand_on(previous);
                    }
                }
                Some(Err(e)) => return self.fail(StreamFailure::Source(error_chain(&e))),
                None => {
                    let actual = Digest::from_sha256(&std::mem::take(&mut self.hasher).finalize());
                    if self.seen != self.expected_size {
                        let detail =
                            format!("{} of {} bytes arrived", self.seen, self.expected_size);
                        return self.fail(StreamFailure::Mismatch(detail));
                    }
                    if actual != self.expected_digest {
                        let detail = format!("the bytes hash to {actual}");
                        return self.fail(StreamFailure::Mismatch(detail));
                    }
                    self.finished = true;
                    self.watch.enter(Phase::Answer);
                    self.transfer = None;
                    return match self.held.take() {
                        Some(last) => self.hand_on(last),
                        None => Poll::Ready(None),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn descriptor(bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: String::new(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            urls: vec![],
        }
    }

    async fn pass(
        chunks: Vec<&'static [u8]>,
        blob: &Descriptor,
    ) -> (Vec<std::io::Result<Bytes>>, bool) {
        let verdict = Arc::new(Mutex::new(None));
        let inner = stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let out: Vec<_> = Verifying::new(inner, blob, verdict.clone(), Watch::new())
            .collect()
            .await;
        let failed = verdict.lock().unwrap().is_some();
        (out, failed)
    }

    #[tokio::test]
    async fn passes_matching_bytes_through_unchanged() {
        let blob = descriptor(b"hello world");
        let (out, failed) = pass(vec![b"hello", b" ", b"world"], &blob).await;
        let joined: Vec<u8> = out.into_iter().flat_map(|c| c.unwrap().to_vec()).collect();
        assert_eq!(joined, b"hello world");
        assert!(!failed);
    }

    #[tokio::test]
    async fn withholds_the_last_chunk_when_the_digest_is_wrong() {
        let blob = descriptor(b"hello world");
        let (out, failed) = pass(vec![b"hello", b" ", b"w0rld"], &blob).await;
        assert!(failed);
        assert!(out.last().unwrap().is_err());
        let delivered: usize = out
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(Bytes::len)
            .sum();
        assert!(
            delivered < 11,
            "the whole body went through: {delivered} bytes"
        );
    }

    #[tokio::test]
    async fn stops_at_too_many_or_too_few_bytes() {
        let blob = descriptor(b"hello");
        assert!(pass(vec![b"hello", b"!"], &blob).await.1);
        assert!(pass(vec![b"hell"], &blob).await.1);
    }

    const STALL: Duration = Duration::from_secs(60);

    fn ok(bytes: &'static [u8]) -> reqwest::Result<Bytes> {
        Ok(Bytes::from_static(bytes))
    }

    #[tokio::test(start_paused = true)]
    async fn a_source_that_sends_nothing_is_a_stall_of_the_source() {
        let blob = descriptor(b"hello");
        let watch = Watch::new();
        let inner = stream::pending::<reqwest::Result<Bytes>>();
        let mut body = Verifying::new(inner, &blob, Arc::default(), watch.clone());
        assert!(futures_util::poll!(body.next()).is_pending());

        let started = Instant::now();
        assert_eq!(watch.stalled(STALL).await, Phase::Source);
        assert_eq!(started.elapsed(), STALL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_stops_taking_bytes_is_a_stall_of_the_target() {
        let blob = descriptor(b"hello world");
        let watch = Watch::new();
        let inner = stream::iter([ok(b"hello"), ok(b" "), ok(b"world")]);
        let mut body = Verifying::new(inner, &blob, Arc::default(), watch.clone());
        assert_eq!(body.next().await.unwrap().unwrap(), "hello");

        assert_eq!(watch.stalled(STALL).await, Phase::Target);
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_silent_after_the_last_byte_is_a_stall_of_its_answer() {
        let blob = descriptor(b"hello");
        let watch = Watch::new();
        let body = Verifying::new(
            stream::iter([ok(b"hello")]),
            &blob,
            Arc::default(),
            watch.clone(),
        );
        assert_eq!(body.collect::<Vec<_>>().await.len(), 1);

        assert_eq!(watch.stalled(STALL).await, Phase::Answer);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transfer_far_longer_than_the_limit_that_keeps_moving_never_stalls() {
        // Ten chunks 50 s apart: eight minutes in all against a one-minute limit.
        let chunks: Vec<&'static [u8]> = vec![b"0123456789"; 10];
        let blob = descriptor(&chunks.concat());
        let watch = Watch::new();
        let slow = stream::iter(chunks).then(|chunk| async move {
            tokio::time::sleep(Duration::from_secs(50)).await;
            ok(chunk)
        });
        let body = Verifying::new(Box::pin(slow), &blob, Arc::default(), watch.clone());

        tokio::select! {
            out = body.collect::<Vec<_>>() => assert!(out.iter().all(Result::is_ok)),
            phase = watch.stalled(STALL) => panic!("a moving transfer was called stalled in {phase:?}"),
        }
    }

    #[tokio::test]
    async fn the_transfer_slot_is_given_back_with_the_last_byte() {
        let slots = Arc::new(Semaphore::new(1));
        let blob = descriptor(b"hello");
        let slot = slots.clone().try_acquire_owned().unwrap();
        let inner = stream::iter([ok(b"hel"), ok(b"lo")]);
        let mut body = Verifying::new(inner, &blob, Arc::default(), Watch::new()).holding(slot);

        assert_eq!(body.next().await.unwrap().unwrap(), "hel");
        assert_eq!(slots.available_permits(), 0, "held while bytes move");
        assert_eq!(body.next().await.unwrap().unwrap(), "lo");
        assert_eq!(
            slots.available_permits(),
            1,
            "given back with the last byte, while the stream (and the upload) is still open"
        );
    }
}

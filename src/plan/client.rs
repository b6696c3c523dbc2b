//! The request stack between kgitops and one apiserver, and how polite it is: requests in flight
//! are bounded (by [`crate::plan::Cluster`], per cluster), an optional client-side rate limit
//! (`qps`/`burst`, a token bucket), and retries of the answers a busy apiserver gives.
//!
//! Why these layers, outermost first:
//!
//! 1. **Retry** (kube's [`RetryPolicy`], configured here): 429 Too Many Requests, 503 and 504 are
//!    retried with exponential backoff and full jitter between [`MIN_BACKOFF`] and
//!    [`ClientOptions::max_backoff`], at most [`ClientOptions::retries`] times; a `Retry-After`
//!    from the server (API Priority and Fairness sends one) is honoured when it asks for longer.
//!    kube's own default (5 ms to 1,000 s, 15 tries) could hold one request for many minutes; the
//!    bound here keeps a throttled apply slower, never stuck. What still fails after the last try
//!    fails the request, and with it the whole apply before or as it writes: nothing is reported
//!    as applied that was not.
//! 2. **Rate limit** (optional, `governor`'s GCRA bucket): every attempt, retries included, waits
//!    for a token. Off by default: API Priority and Fairness on the server decides in seats (requests
//!    in flight), which the concurrency bound already limits, and it sees every client of the
//!    cluster, which a client-side bucket cannot. Set `qps`/`burst` to be gentler still.
//! 3. **Counting**: every answer's status is counted ([`ApiStats`]), so throttling shows in the
//!    daemon's metrics and status.
//!
//! kube's stack itself is not `Clone`; a [`Buffer`] in front of it makes it shareable by the retry
//! and rate-limit layers (one channel hop per request).

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{Request, Response};
use kube::client::{Body, ClientBuilder, retry::RetryPolicy};
use tower::buffer::Buffer;
use tower::retry::RetryLayer;
use tower::{BoxError, Layer, Service};

use super::cluster::DEFAULT_CONCURRENCY;

/// The smallest delay before a retry.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Default of [`ClientOptions::max_backoff`].
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Default of [`ClientOptions::retries`].
pub const DEFAULT_RETRIES: u32 = 8;
/// Requests queued in front of kube's stack (the [`Buffer`]); the concurrency bound keeps the
/// queue far below it.
const BUFFER: usize = 1024;

/// How kgitops talks to one cluster's apiserver. The daemon takes it from a cluster's `api:` key;
/// the CLI from `--concurrency`, `--qps`, `--burst`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientOptions {
    /// Requests in flight at once (at least 1).
    pub concurrency: usize,
    /// Client-side requests per second; absent: no client-side limit.
    pub qps: Option<NonZeroU32>,
    /// Requests that may go at once above `qps` (default: `qps`).
    pub burst: Option<NonZeroU32>,
    /// Retries of a 429/503/504 answer before the request fails.
    pub retries: u32,
    /// Upper bound of one backoff delay (a server's `Retry-After` may ask for more).
    pub max_backoff: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            concurrency: DEFAULT_CONCURRENCY,
            qps: None,
            burst: None,
            retries: DEFAULT_RETRIES,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

impl ClientOptions {
    /// Options with `concurrency` requests in flight and the other defaults.
    pub fn with_concurrency(concurrency: usize) -> ClientOptions {
        ClientOptions {
            concurrency,
            ..ClientOptions::default()
        }
    }
}

/// Why the stack could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot create a kube client: {0}")]
    Kube(#[from] kube::Error),
    #[error("invalid retry backoff (max_backoff {max:?} below the minimum {MIN_BACKOFF:?})")]
    Backoff { max: Duration },
}

/// Counts of the apiserver's answers through one client (shared by its clones).
#[derive(Debug, Default)]
pub struct ApiStats {
    responses: AtomicU64,
    throttled: AtomicU64,
    unavailable: AtomicU64,
}

impl ApiStats {
    /// Answers received, retried ones included.
    pub fn responses(&self) -> u64 {
        self.responses.load(Ordering::Relaxed)
    }

    /// 429 Too Many Requests answers received (each retried or, after the last try, failed).
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// 503 and 504 answers received.
    pub fn unavailable(&self) -> u64 {
        self.unavailable.load(Ordering::Relaxed)
    }

    /// Counts one answer.
    pub fn record(&self, status: http::StatusCode) {
        self.responses.fetch_add(1, Ordering::Relaxed);
        match status.as_u16() {
            429 => self.throttled.fetch_add(1, Ordering::Relaxed),
            503 | 504 => self.unavailable.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
    }
}

/// A kube client for `config` with kgitops' retry, rate-limit and counting layers. `config`'s
/// own default retry is turned off (it is replaced, not doubled).
pub fn build(
    mut config: kube::Config,
    options: &ClientOptions,
) -> Result<(kube::Client, Arc<ApiStats>), ClientError> {
    config.default_retry = false;
    let stats = Arc::new(ApiStats::default());
    let limiter = options.qps.map(|qps| {
        let burst = options.burst.unwrap_or(qps);
        Arc::new(RateLimiter::direct(Quota::per_second(qps).allow_burst(burst)))
    });
    let policy = RetryPolicy::new(MIN_BACKOFF, options.max_backoff, options.retries, true).map_err(|_| {
        ClientError::Backoff {
            max: options.max_backoff,
        }
    })?;
    let builder = ClientBuilder::try_from(config)?;
    let client = builder
        .with_layer(&CountLayer { stats: stats.clone() })
        .with_layer(&BufferLayer)
        .with_layer(&RateLimitLayer { limiter })
        .with_layer(&RetryLayer::new(policy))
        .build();
    Ok((client, stats))
}

/// Counts every answer's status into [`ApiStats`].
struct CountLayer {
    stats: Arc<ApiStats>,
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;
    fn layer(&self, inner: S) -> Count<S> {
        Count {
            inner,
            stats: self.stats.clone(),
        }
    }
}

struct Count<S> {
    inner: S,
    stats: Arc<ApiStats>,
}

type BoxedFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B> Service<Request<Body>> for Count<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxedFuture<Response<B>, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let stats = self.stats.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let response = fut.await.map_err(Into::into)?;
            stats.record(response.status());
            Ok(response)
        })
    }
}

/// Makes kube's (not `Clone`) stack shareable: [`Buffer`] with room for [`BUFFER`] requests.
struct BufferLayer;

impl<S, B> Layer<S> for BufferLayer
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Service = Buffer<Request<Body>, S::Future>;
    fn layer(&self, inner: S) -> Self::Service {
        Buffer::new(inner, BUFFER)
    }
}

/// Waits for a token of the client-side bucket, when there is one, before each attempt.
struct RateLimitLayer {
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;
    fn layer(&self, inner: S) -> RateLimit<S> {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

#[derive(Clone)]
struct RateLimit<S> {
    inner: S,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl<S, B> Service<Request<Body>> for RateLimit<S>
where
    S: Service<Request<Body>, Response = Response<B>, Error = BoxError> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxedFuture<Response<B>, BoxError>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The ready clone goes into the future (tower's rule for services used after poll_ready).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limiter = self.limiter.clone();
        Box::pin(async move {
            if let Some(limiter) = limiter {
                limiter.until_ready().await;
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_by_kind() {
        let stats = ApiStats::default();
        for code in [200, 429, 429, 503, 504, 500] {
            stats.record(http::StatusCode::from_u16(code).unwrap());
        }
        assert_eq!(stats.responses(), 6);
        assert_eq!(stats.throttled(), 2);
        assert_eq!(stats.unavailable(), 2);
    }

    #[test]
    fn a_backoff_below_the_minimum_is_refused() {
        let options = ClientOptions {
            max_backoff: Duration::from_millis(1),
            ..ClientOptions::default()
        };
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        assert!(matches!(
            build(config, &options),
            Err(ClientError::Backoff { .. })
        ));
    }
}

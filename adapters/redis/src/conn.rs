//! One lazily (re)connected Redis connection with a timeout on every call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{Either, select};
use redis::aio::MultiplexedConnection;
use staunch::runtime::Timer;

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;
type SleepFn = dyn Fn(Duration) -> Sleep + Send + Sync;

/// Why a Redis round trip gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// No answer within the store's timeout (Redis down, slow, or unreachable).
    Timeout(Duration),
    /// Redis answered with an error or the connection failed.
    Redis(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Timeout(d) => write!(f, "redis gave no answer within {d:?}"),
            StoreError::Redis(e) => write!(f, "redis failed: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A handle on one Redis server shared by breakers and limiters: a
/// multiplexed connection opened on first use and reopened after a failure,
/// and a timeout applied to every round trip (connecting included), measured
/// on the staunch timer given at construction.
///
/// Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
    sleep: Box<SleepFn>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.inner.client.get_connection_info().addr)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for the server at `url` (`redis://127.0.0.1:6379/`), giving
    /// every round trip `timeout` (a few milliseconds on a LAN; the time a
    /// refused or half-open call may wait on Redis at most).
    ///
    /// Nothing is connected yet: a server that is down now is only a
    /// [`StoreError`] at the first call.
    ///
    /// # Errors
    ///
    /// [`StoreError::Redis`] when `url` is not a valid Redis URL.
    pub fn open<T>(url: &str, timeout: Duration, timer: T) -> Result<RedisStore, StoreError>
    where
        T: Timer + Send + Sync + 'static,
        T::Sleep: Send,
    {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Redis(format!("bad redis url {url:?}: {e}")))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                conn: Mutex::new(None),
                timeout,
                sleep: Box::new(move |d| Box::pin(timer.sleep(d))),
            }),
        })
    }

    /// The timeout every round trip gets.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    pub(crate) fn sleep(&self, d: Duration) -> Sleep {
        (self.inner.sleep)(d)
    }

    /// Runs `f` on a connection within the timeout; a failed or timed-out
    /// call drops the connection so the next one reconnects.
    pub(crate) async fn run<R, F, Fut>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<R>>,
    {
        let work = async {
            let cached = self
                .inner
                .conn
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let conn = match cached {
                Some(c) => c,
                None => {
                    let c = self.inner.client.get_multiplexed_async_connection().await?;
                    *self
                        .inner
                        .conn
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(c.clone());
                    c
                }
            };
            f(conn).await
        };
        let timeout = self.inner.timeout;
        let out = match select(Box::pin(work), self.sleep(timeout)).await {
            Either::Left((Ok(v), _)) => return Ok(v),
            Either::Left((Err(e), _)) => StoreError::Redis(e.to_string()),
            Either::Right(((), _)) => StoreError::Timeout(timeout),
        };
        *self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        Err(out)
    }
}

//! [`KeyedRateLimiter`]: one GCRA cell per key, in bounded memory.
//!
//! # Invariants
//!
//! 1. Keys live in `shards.len()` shards, each a mutex over a map from key
//!    to TAT; a key always lands in the same shard. Under the shard's lock
//!    the TAT is a plain number, so there are no lost updates.
//! 2. The cap is shared by every shard: `tracked` counts the keys of all
//!    shards, a new key is inserted only after reserving one in it below
//!    `max_keys`, and every key removed is subtracted. So the limiter never
//!    tracks more than `max_keys` keys, and any `max_keys` keys fit, however
//!    they hash. (An equal share of the cap per shard refused 74 of 1000
//!    distinct keys with `max_keys(1000)`, saying the cap was reached while
//!    926 were tracked.)
//! 3. A key whose TAT is at or before `now` is *idle*: forgetting it changes
//!    no decision (gcra.rs, invariant 2). Idle keys are swept from a shard
//!    when it has doubled since its last sweep, so eviction costs O(1)
//!    amortised per call.
//! 4. When the cap is reached, a *new* key sweeps every shard for idle
//!    keys, one shard locked at a time. If none is idle, the call is
//!    refused with [`RateError::KeysFull`] carrying the time until the
//!    soonest key goes idle, and that time is kept (`full_until`): until
//!    then no key can go idle (TATs only grow; nothing was added, since
//!    any sweep that frees a key clears it), so further new keys are
//!    refused without sweeping again. A full limiter thus sweeps at most
//!    once per time a key could go idle, not once per call. Known keys
//!    keep their exact limits: the cap never loosens a limit (evicting a
//!    busy key would hand its owner a fresh burst) and never grows memory.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use super::RateError;
use super::limiter::{RateLimiterBuilder, Settings};
use crate::ConfigError;
use crate::sync::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};

/// The default cap on keys: 100 000 keys cost a few megabytes at most.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Sweeping starts once a shard holds this many keys.
const FIRST_SWEEP: usize = 64;

struct Shard<K> {
    /// Keys with the hash computed once per call (it also picks the
    /// shard), so a check hashes its key once, not twice.
    tats: HashMap<Hashed<K>, u64, BuildHasherDefault<TakeHash>>,
    /// Sweep idle keys once the shard holds this many.
    sweep_at: usize,
}

/// A key with its hash (from the limiter's `RandomState`).
struct Hashed<K> {
    hash: u64,
    key: K,
}

/// What a map lookup compares: a stored [`Hashed`] key or a borrowed one
/// ([`HashedRef`]), so a check looks a key up without cloning it.
trait KeyView<K> {
    fn hash(&self) -> u64;
    fn key(&self) -> &K;
}

impl<K> KeyView<K> for Hashed<K> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn key(&self) -> &K {
        &self.key
    }
}

struct HashedRef<'a, K> {
    hash: u64,
    key: &'a K,
}

impl<K> KeyView<K> for HashedRef<'_, K> {
    fn hash(&self) -> u64 {
        self.hash
    }
    fn key(&self) -> &K {
        self.key
    }
}

impl<'a, K: 'a> std::borrow::Borrow<dyn KeyView<K> + 'a> for Hashed<K> {
    fn borrow(&self) -> &(dyn KeyView<K> + 'a) {
        self
    }
}

impl<K> Hash for dyn KeyView<K> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(KeyView::hash(self));
    }
}

impl<K: Eq> PartialEq for dyn KeyView<K> + '_ {
    fn eq(&self, other: &Self) -> bool {
        KeyView::hash(self) == KeyView::hash(other) && self.key() == other.key()
    }
}

impl<K: Eq> Eq for dyn KeyView<K> + '_ {}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: Eq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

/// A hasher that passes on the one `u64` it is given: the key's hash was
/// computed already.
#[derive(Default)]
struct TakeHash(u64);

impl Hasher for TakeHash {
    fn finish(&self) -> u64 {
        // The high bits picked the shard, so within a shard they are much
        // alike: swap the halves, so the map's control bytes (taken from the
        // top) see the bits the shard did not use.
        self.0.rotate_left(32)
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<K: Hash + Eq> Shard<K> {
    /// Forgets the idle keys; how many.
    fn sweep(&mut self, now: u64) -> usize {
        let before = self.tats.len();
        self.tats.retain(|_, tat| *tat > now);
        self.sweep_at = (self.tats.len() * 2).max(FIRST_SWEEP);
        before - self.tats.len()
    }
}

/// A rate limit per key (per user, per host), with idle keys evicted and a
/// cap on the number of keys; see the [module docs](super) and
/// [`max_keys`](KeyedRateLimiterBuilder::max_keys) for what happens at the cap.
///
/// `Clone + Send + Sync` natively; clones share one state.
pub struct KeyedRateLimiter<K> {
    inner: Arc<Inner<K>>,
}

struct Inner<K> {
    settings: Settings,
    hasher: RandomState,
    shards: Box<[Mutex<Shard<K>>]>,
    max_keys: usize,
    /// Keys in all shards together, at most `max_keys` (invariant 2).
    tracked: AtomicUsize,
    /// While the cap is reached: no key goes idle before this time
    /// (invariant 4); 0 when unknown.
    full_until: AtomicU64,
}

impl<K> Inner<K> {
    /// Takes a place for one new key under the cap.
    fn reserve(&self) -> bool {
        self.tracked
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_keys).then_some(n + 1)
            })
            .is_ok()
    }

    /// `n` keys were forgotten: their places are free, and what was known
    /// about when the full limiter frees one is stale.
    fn untrack(&self, n: usize) {
        if n > 0 {
            self.tracked.fetch_sub(n, Ordering::AcqRel);
            self.full_until.store(0, Ordering::Relaxed);
        }
    }
}

impl<K> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<K> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("settings", &self.inner.settings)
            .field("max_keys", &self.inner.max_keys)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// Admits one call for `key` now, or refuses.
    ///
    /// # Errors
    ///
    /// [`RateError::Limited`] with the wait for this key;
    /// [`RateError::KeysFull`] for a new key when the cap is reached and no
    /// key is idle.
    ///
    /// ```
    /// use staunch::rate::{KeyedRateLimiter, Rate, RateLimiter};
    /// use staunch::testing::VirtualRuntime;
    ///
    /// let rt = VirtualRuntime::new();
    /// let per_user: KeyedRateLimiter<&str> =
    ///     KeyedRateLimiter::builder(RateLimiter::builder(rt, Rate::per_second(1)).burst(1)).build()?;
    /// assert!(per_user.check(&"ann").is_ok());
    /// assert!(per_user.check(&"ann").is_err()); // ann waits...
    /// assert!(per_user.check(&"bob").is_ok()); // ...bob does not
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub fn check(&self, key: &K) -> Result<(), RateError> {
        self.check_n(key, 1)
    }

    /// Admits a call for `key` costing `cost` now, or refuses.
    ///
    /// # Errors
    ///
    /// As for [`check`](Self::check), and [`RateError::CostOverBurst`] for a
    /// cost above the burst.
    pub fn check_n(&self, key: &K, cost: u32) -> Result<(), RateError> {
        let s = &self.inner.settings;
        s.check_cost(cost)?;
        match self.take(key, cost, s.clock.now_ns()) {
            Ok(()) => {
                s.admitted(cost);
                Ok(())
            }
            Err(Ok(wait)) => Err(s.limited(cost, wait).into()),
            Err(Err(error)) => Err(error),
        }
    }

    /// Waits until a call for `key` is admitted (at most the maximum wait).
    ///
    /// # Errors
    ///
    /// [`RateError::Limited`] at once when the wait would exceed the maximum
    /// wait; [`RateError::KeysFull`] as for [`check`](Self::check).
    ///
    /// # Cancel safety
    ///
    /// Nothing is reserved while waiting.
    ///
    /// ```
    /// use staunch::rate::{KeyedRateLimiter, Rate, RateLimiter};
    /// use staunch::runtime::Timer;
    /// use staunch::testing::VirtualRuntime;
    /// use std::time::Duration;
    ///
    /// let rt = VirtualRuntime::new();
    /// let per_host: KeyedRateLimiter<String> =
    ///     KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::per_second(4)).burst(1)).build()?;
    /// rt.block_on(async {
    ///     let host = "example.org".to_string();
    ///     per_host.until_ready(&host).await.unwrap();
    ///     per_host.until_ready(&host).await.unwrap();
    ///     assert_eq!(rt.now().since_origin(), Duration::from_millis(250));
    /// })
    /// .unwrap();
    /// # Ok::<(), staunch::ConfigError>(())
    /// ```
    pub async fn until_ready(&self, key: &K) -> Result<(), RateError> {
        self.until_ready_n(key, 1).await
    }

    /// Waits until a call for `key` costing `cost` is admitted.
    ///
    /// # Errors
    ///
    /// As for [`until_ready`](Self::until_ready), and
    /// [`RateError::CostOverBurst`] for a cost above the burst.
    ///
    /// # Cancel safety
    ///
    /// Nothing is reserved while waiting.
    pub async fn until_ready_n(&self, key: &K, cost: u32) -> Result<(), RateError> {
        let s = &self.inner.settings;
        s.check_cost(cost)?;
        s.until_ready(cost, |now| self.take(key, cost, now)).await
    }

    /// How many keys are tracked now (idle ones not yet swept included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.shards.iter().map(|s| lock(s).tats.len()).sum()
    }

    /// Whether no key is tracked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every idle key now (it happens by itself as keys come and
    /// go; call this to give memory back after a burst of one-off keys).
    pub fn evict_idle(&self) {
        let now = self.inner.settings.clock.now_ns();
        for shard in self.inner.shards.iter() {
            let mut shard = lock(shard);
            let freed = shard.sweep(now);
            self.inner.untrack(freed);
            shard.tats.shrink_to_fit();
        }
    }

    /// The most keys this limiter ever tracks.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.inner.max_keys
    }

    /// `Ok` if admitted; `Err(Ok(wait_ns))` if limited; `Err(Err(_))` if full.
    fn take(&self, key: &K, cost: u32, now: u64) -> Result<(), Result<u64, RateError>> {
        let inner = &*self.inner;
        let gcra = &inner.settings.gcra;
        let threshold = gcra.threshold(now, cost);
        let hash = inner.hasher.hash_one(key);
        // The high 32 bits pick the shard, scaled onto `0..len` by a
        // multiply and shift instead of a division (Lemire's fast range);
        // the map uses its own hasher.
        let index = (((hash >> 32) * inner.shards.len() as u64) >> 32) as usize;
        let view = HashedRef { hash, key };
        let new_tat = {
            let mut shard = lock(&inner.shards[index]);
            if let Some(tat) = shard.tats.get_mut(&view as &dyn KeyView<K>) {
                *tat = gcra.decide(*tat, now, threshold, cost).map_err(Ok)?;
                return Ok(());
            }
            let new_tat = gcra.decide(0, now, threshold, cost).map_err(Ok)?;
            if shard.tats.len() >= shard.sweep_at {
                let freed = shard.sweep(now);
                inner.untrack(freed);
            }
            if inner.reserve() {
                shard.tats.insert(
                    Hashed {
                        hash,
                        key: key.clone(),
                    },
                    new_tat,
                );
                return Ok(());
            }
            new_tat
        };
        // The cap is reached: look for idle keys in every shard, with this
        // one's lock released (one shard locked at a time).
        self.make_room(now).map_err(Err)?;
        let mut shard = lock(&inner.shards[index]);
        if let Some(tat) = shard.tats.get_mut(&view as &dyn KeyView<K>) {
            // Another caller added this key meanwhile: it decides, and the
            // place reserved for it goes back.
            inner.untrack(1);
            *tat = gcra.decide(*tat, now, threshold, cost).map_err(Ok)?;
            return Ok(());
        }
        shard.tats.insert(
            Hashed {
                hash,
                key: key.clone(),
            },
            new_tat,
        );
        Ok(())
    }

    /// Reserves a place for a new key in a limiter whose cap is reached,
    /// by sweeping every shard's idle keys (invariant 4), or says when the
    /// soonest key goes idle.
    #[cold]
    fn make_room(&self, now: u64) -> Result<(), RateError> {
        let inner = &*self.inner;
        let full = |soonest: u64| RateError::KeysFull {
            max_keys: inner.max_keys,
            retry_after: Duration::from_nanos(soonest.saturating_sub(now)),
        };
        let until = inner.full_until.load(Ordering::Relaxed);
        if now < until {
            return Err(full(until));
        }
        let mut soonest = u64::MAX;
        for shard in inner.shards.iter() {
            let mut shard = lock(shard);
            let freed = shard.sweep(now);
            inner.untrack(freed);
            if let Some(&tat) = shard.tats.values().min() {
                soonest = soonest.min(tat);
            }
        }
        if inner.reserve() {
            return Ok(());
        }
        // Keys added meanwhile by other callers took the room; if the
        // sweep saw none, nothing is known: try again at once.
        let soonest = if soonest == u64::MAX { now } else { soonest };
        inner.full_until.store(soonest, Ordering::Relaxed);
        Err(full(soonest))
    }
}

impl<K> KeyedRateLimiter<K> {
    /// A builder for a keyed limiter giving each key the limit `limiter`
    /// describes, with at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn builder(limiter: RateLimiterBuilder) -> KeyedRateLimiterBuilder<K> {
        KeyedRateLimiterBuilder {
            limiter,
            max_keys: DEFAULT_MAX_KEYS,
            _keys: std::marker::PhantomData,
        }
    }
}

/// Configures a [`KeyedRateLimiter`]; checked by [`build`](Self::build).
#[must_use = "a builder does nothing until you call `build()`"]
pub struct KeyedRateLimiterBuilder<K> {
    limiter: RateLimiterBuilder,
    max_keys: usize,
    _keys: std::marker::PhantomData<fn(K)>,
}

impl<K> fmt::Debug for KeyedRateLimiterBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiterBuilder")
            .field("limiter", &self.limiter)
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

impl<K: Hash + Eq> KeyedRateLimiterBuilder<K> {
    /// The most keys tracked at once (default [`DEFAULT_MAX_KEYS`]).
    ///
    /// Any `max_keys` distinct keys can be tracked at once, however they
    /// hash. When a new key arrives while the cap is reached and every key
    /// is busy (none idle), the call is refused with
    /// [`RateError::KeysFull`] and the time until the soonest key goes
    /// idle, at most one burst's worth of time; known keys are unaffected.
    /// So the cap never loosens anyone's limit and memory never grows past
    /// it.
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// Checks the settings and builds the limiter.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for any setting [`RateLimiterBuilder::build`]
    /// refuses, or a zero `max_keys`.
    // On wasm32 the timer is not `Send`; there is one thread there.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    pub fn build(self) -> Result<KeyedRateLimiter<K>, ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::new(
                "max_keys",
                "must be at least 1, or no key could ever be admitted",
            ));
        }
        let settings = self.limiter.settings()?;
        // At least 64 keys a shard, so keys that happen to share a shard
        // rarely meet a small cap before the others have.
        let shards = (self.max_keys / 64).clamp(1, 16);
        Ok(KeyedRateLimiter {
            inner: Arc::new(Inner {
                settings,
                hasher: RandomState::new(),
                shards: (0..shards)
                    .map(|_| {
                        Mutex::new(Shard {
                            tats: HashMap::default(),
                            sweep_at: FIRST_SWEEP,
                        })
                    })
                    .collect(),
                max_keys: self.max_keys,
                tracked: AtomicUsize::new(0),
                full_until: AtomicU64::new(0),
            }),
        })
    }
}

//! A circuit breaker whose state lives in Redis, decided on the server's
//! clock, with closed-state calls that never wait on Redis.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::Poll;
use std::time::Duration;

use futures::task::AtomicWaker;
use staunch::breaker::{
    Admission, BreakerStore, Call, CircuitBreaker, CircuitOpen, Metrics, Outcome, Permit,
};
use staunch::observe::{CircuitState, Event, Observers};
use staunch::runtime::Timer;
use staunch::{ConfigError, Fallible, Guarded};

use crate::FailureMode;
use crate::conn::RedisStore;

/// Every operation on the shared state, in one script so all of them share
/// the loading, validation and open → half-open rule. Times are the server's
/// `TIME` in microseconds; the client never sends a timestamp.
///
/// KEYS: 1 state hash, 2 window hash.
/// ARGV: 1 op (`sync`, `probe`, `done`), 2 the caller's known generation,
/// 3 successes (sync) or verdict (done: 1 ok, 0 failed, 2 released),
/// 4 failures, 5 bucket length µs, 6 buckets, 7 minimum calls,
/// 8 failure rate ‰, 9 open duration µs, 10 probes, 11 key TTL ms.
/// Returns `{state, generation, µs until half-open, admitted, rebuilt}`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local op = ARGV[1]
local known = tonumber(ARGV[2])
local ttl = tonumber(ARGV[11])
local probes = tonumber(ARGV[10])
local open_us = tonumber(ARGV[9])
local rebuilt = 0
local h = redis.pcall('HMGET', KEYS[1], 'state', 'gen', 'until', 'taken', 'ok')
local st, gen, untl, taken, okc
if type(h) == 'table' and not h.err then
  st = tonumber(h[1]); gen = tonumber(h[2]); untl = tonumber(h[3]) or 0
  taken = tonumber(h[4]) or 0; okc = tonumber(h[5]) or 0
end
if st == nil or gen == nil or st < 0 or st > 2 or gen ~= math.floor(gen) then
  -- Never created (no key, and the caller knows no generation yet): start
  -- at generation 0. Lost or corrupt: rebuild one generation past what the
  -- caller knew, so nothing older can count, and report it.
  local absent = type(h) == 'table' and not h.err and h[1] == false and h[2] == false
  redis.call('DEL', KEYS[1], KEYS[2])
  if absent and known == 0 then
    st = 0; gen = 0; untl = 0; taken = 0; okc = 0
  else
    st = 0; gen = known + 1; untl = 0; taken = 0; okc = 0; rebuilt = 1
  end
  -- The caller's counts were made under the newest state it knew: they
  -- count in the rebuilt one.
  known = gen
end
if st == 1 and now >= untl then
  st = 2; gen = gen + 1; taken = 0; okc = 0
end
local admitted = 0
if op == 'sync' then
  local s = tonumber(ARGV[3]); local f = tonumber(ARGV[4])
  if st == 0 and known == gen and s + f > 0 then
    local blen = tonumber(ARGV[5]); local nb = tonumber(ARGV[6])
    local b = math.floor(now / blen)
    local r = redis.pcall('HINCRBY', KEYS[2], 'c' .. b, s + f)
    if type(r) == 'table' and r.err then
      redis.call('DEL', KEYS[2])
      redis.call('HINCRBY', KEYS[2], 'c' .. b, s + f)
    end
    redis.call('HINCRBY', KEYS[2], 'f' .. b, f)
    redis.call('PEXPIRE', KEYS[2], ttl)
    local all = redis.call('HGETALL', KEYS[2])
    local calls = 0; local fails = 0
    for i = 1, #all, 2 do
      local k = all[i]; local n = tonumber(all[i + 1]) or 0
      local kb = tonumber(string.sub(k, 2))
      if kb == nil or kb <= b - nb then
        redis.call('HDEL', KEYS[2], k)
      elseif string.sub(k, 1, 1) == 'c' then
        calls = calls + n
      else
        fails = fails + n
      end
    end
    if calls >= tonumber(ARGV[7]) and fails * 1000 >= tonumber(ARGV[8]) * calls then
      st = 1; gen = gen + 1; untl = now + open_us
      redis.call('DEL', KEYS[2])
    end
  end
elseif op == 'probe' then
  if st == 2 and taken < probes then
    taken = taken + 1; admitted = 1
  end
elseif op == 'done' then
  local v = tonumber(ARGV[3])
  if st == 2 and known == gen then
    if v == 0 then
      st = 1; gen = gen + 1; untl = now + open_us
    elseif v == 1 then
      okc = okc + 1
      if okc >= probes then
        st = 0; gen = gen + 1
        redis.call('DEL', KEYS[2])
      end
    elseif taken > 0 then
      taken = taken - 1
    end
  end
end
redis.call('HSET', KEYS[1], 'state', st, 'gen', gen, 'until', string.format('%d', untl), 'taken', taken, 'ok', okc)
redis.call('PEXPIRE', KEYS[1], ttl)
local left = 0
if st == 1 then left = untl - now end
return {st, gen, left, admitted, rebuilt}
";

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
/// Redis unusable: the failure mode decides.
const DEGRADED: u64 = 3;

/// `Inner::forced`: not forced, forced open, forced closed (this process only).
const NOT_FORCED: u8 = 0;
const FORCED_OPEN: u8 = 1;
const FORCED_CLOSED: u8 = 2;

/// Marks a permit the local fallback breaker issued (its generation is the
/// local breaker's, not the shared one's).
const LOCAL_PERMIT: u64 = 1 << 61;

/// What this process last learned of the shared breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedState {
    /// Closed, Open or HalfOpen, as of the last sync.
    pub state: CircuitState,
    /// The shared generation: it grows by one at every transition, so a
    /// write from a process that missed one is recognised and dropped.
    pub generation: u64,
    /// Whether Redis is unusable and the failure mode is in force.
    pub degraded: bool,
}

/// A circuit breaker shared by every process using the same Redis and name:
/// a [`CircuitBreaker`] whose state lives in Redis (through core's
/// [`BreakerStore`] seam), plus the background sync that keeps this process
/// in step with the others.
///
/// * Closed: calls run at once and are counted in two local atomics;
///   [`sync_task`](Self::sync_task) pushes the counts every
///   `sync_interval` with the generation they were counted in and pulls the
///   state. The trip decision is made by the script on the server's clock
///   over a sliding window of buckets fed by every process.
/// * Open: refused locally, without a round trip, until a sync learns that
///   the open duration (on the server's clock) is over.
/// * Half-open: each call asks Redis for one of the `half_open_probes` slots
///   (one round trip, within the store timeout); a probe's outcome is
///   pushed by the sync task, which it wakes at once. The first failure
///   reopens, `half_open_probes` successes close.
///
/// While Redis is unusable the breaker follows its [`FailureMode`].
///
/// [`breaker`](Self::breaker) is the breaker itself, for anything that
/// takes a [`CircuitBreaker`] (a `Policy` stage, say); [`call`](Self::call)
/// is a shortcut to its `call`.
#[derive(Clone)]
pub struct RedisBreaker {
    inner: Arc<Inner>,
    breaker: CircuitBreaker,
}

struct Inner {
    store: RedisStore,
    name: Arc<str>,
    keys: [String; 2],
    /// `generation << 2 | state` (state one of the constants above).
    view: AtomicU64,
    /// Forced by `force_open` / `force_closed` in this process.
    forced: AtomicU8,
    /// Outcomes counted since the last push.
    successes: AtomicU64,
    failures: AtomicU64,
    /// Last learned wait until half-open, in µs.
    retry_after_us: AtomicU64,
    /// Half-open probes this process was granted.
    probes_admitted: AtomicU64,
    /// Probe outcomes to push at the next sync: `(generation, code)` with
    /// code 1 ok, 0 failed, 2 released (dropped or counted as neither).
    probe_reports: Mutex<Vec<(u64, u64)>>,
    /// Wakes the sync task early (a probe reported).
    wake_sync: Arc<WakeSync>,
    /// This breaker's own handle, for the futures of half-open admission.
    me: Weak<Inner>,
    local: CircuitBreaker,
    mode: FailureMode,
    observers: Observers,
    script: redis::Script,
    args: Args,
    sync_interval: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Args {
    bucket_us: u64,
    buckets: u32,
    minimum_calls: u32,
    rate_permille: u32,
    open_us: u64,
    probes: u32,
    ttl_ms: u64,
}

/// A flag and a waker: the sync task sleeps until its interval is over or
/// the flag is raised.
#[derive(Default)]
struct WakeSync {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl WakeSync {
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }

    async fn raised(&self) {
        futures::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.raised.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl fmt::Debug for RedisBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBreaker")
            .field("name", &self.inner.name)
            .field("shared", &self.shared_state())
            .finish_non_exhaustive()
    }
}

/// Settings for a [`RedisBreaker`]; see [`RedisBreaker::builder`].
#[derive(Debug)]
pub struct RedisBreakerBuilder {
    store: RedisStore,
    name: Arc<str>,
    window: Duration,
    buckets: u32,
    minimum_calls: u32,
    failure_rate: f64,
    open: Duration,
    probes: u32,
    sync_interval: Duration,
    mode: FailureMode,
    observers: Observers,
    local: staunch::breaker::CircuitBreakerBuilder,
}

impl RedisBreaker {
    /// A breaker named `name` (keys `staunch:breaker:{name}:state` and
    /// `:window`); `timer` drives the sync task and the local fallback.
    ///
    /// Defaults: a 10 s window in 10 buckets, 10 calls minimum, 50 % failure
    /// rate, 5 s open, 1 probe, 5 ms sync interval,
    /// [`FailureMode::FallbackToLocal`].
    pub fn builder<T: Timer + 'static>(
        store: RedisStore,
        timer: T,
        name: impl Into<Arc<str>>,
    ) -> RedisBreakerBuilder {
        RedisBreakerBuilder {
            store,
            name: name.into(),
            window: Duration::from_secs(10),
            buckets: 10,
            minimum_calls: 10,
            failure_rate: 0.5,
            open: Duration::from_secs(5),
            probes: 1,
            sync_interval: Duration::from_millis(5),
            mode: FailureMode::default(),
            observers: Observers::new(),
            local: CircuitBreaker::builder(timer),
        }
    }

    /// The shared breaker as a [`CircuitBreaker`]: `call`, `try_acquire`,
    /// `state`, `metrics` and forcing all work on the shared state, and it
    /// slots into a `Policy` like any breaker.
    ///
    /// `try_acquire` cannot wait for Redis: while the shared breaker is
    /// half-open it refuses (`retry_after` zero), and `call` asks Redis for
    /// a probe slot. `force_open` / `force_closed` hold this process's view
    /// only (the shared state is unchanged); `reset` ends them.
    #[must_use]
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Runs `op` if the shared breaker admits it: [`CircuitBreaker::call`]
    /// on [`breaker`](Self::breaker). `op` is a future of `Result<T, E>` or
    /// another staunch call ([`Fallible`]), and the result has the same
    /// shape. In closed state this touches only local atomics.
    ///
    /// The operation's own error counts as a failure unless
    /// [`failure_if`](RedisBreakerBuilder::failure_if) says otherwise (then
    /// as a success); a timeout or a panic below counts as a failure; a
    /// cancellation, an open circuit or a rejection below counts as neither.
    ///
    /// # Errors
    ///
    /// [`Error::CircuitOpen`](staunch::Error::CircuitOpen) when the shared
    /// breaker (or, while Redis is unusable in
    /// [`FailureMode::FallbackToLocal`], the local one) refuses the call,
    /// and also while Redis is unusable in [`FailureMode::FailClosed`] (its
    /// `retry_after` is then the sync interval, when Redis is tried again);
    /// otherwise the operation's error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the call counts as neither success nor failure; a
    /// half-open probe dropped that way is released at the next sync.
    pub fn call<G>(&self, op: G) -> Guarded<Call<'_, G>>
    where
        G: Fallible,
        G::Err: 'static,
    {
        self.breaker.call(op)
    }

    /// Pushes the counts and probe outcomes made since the last sync and
    /// pulls the shared state once. [`sync_task`](Self::sync_task) calls it
    /// in a loop; tests and callers driving their own loop may call it
    /// directly.
    pub async fn sync(&self) {
        self.inner.sync().await;
    }

    /// The background loop keeping this process in step with the others:
    /// a [`sync`](Self::sync) every `sync_interval`, or at once when a
    /// half-open probe reports. Spawn it on any executor; it ends once
    /// every clone of the breaker (and of [`breaker`](Self::breaker)) is
    /// dropped.
    pub fn sync_task(&self) -> impl Future<Output = ()> + Send + 'static {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let store = self.inner.store.clone();
        let interval = self.inner.sync_interval;
        let wake = self.inner.wake_sync.clone();
        async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                inner.sync().await;
                drop(inner);
                let sleep = store.sleep(interval);
                let raised = wake.raised();
                futures::pin_mut!(sleep, raised);
                futures::future::select(sleep, raised).await;
            }
        }
    }

    /// What this process last learned of the shared state.
    #[must_use]
    pub fn shared_state(&self) -> SharedState {
        let v = self.inner.view.load(Ordering::Acquire);
        SharedState {
            state: to_state(v & 3),
            generation: v >> 2,
            degraded: v & 3 == DEGRADED,
        }
    }

    /// The local breaker used in [`FailureMode::FallbackToLocal`] (for its
    /// metrics).
    #[must_use]
    pub fn local(&self) -> &CircuitBreaker {
        &self.inner.local
    }

    /// How many half-open probes this process was granted since it was
    /// built (summed over processes, it shows that half-open admitted
    /// exactly the configured number per half-open period).
    #[must_use]
    pub fn probes_admitted(&self) -> u64 {
        self.inner.probes_admitted.load(Ordering::Relaxed)
    }

    /// The Redis keys holding the shared state: the state hash and the window.
    #[must_use]
    pub fn keys(&self) -> [&str; 2] {
        [&self.inner.keys[0], &self.inner.keys[1]]
    }
}

/// The shared state as core's breaker sees it. Closed-state admission and
/// reports are local atomics; only a half-open admission waits on Redis.
impl BreakerStore for Inner {
    #[inline]
    fn admit(&self) -> Admission {
        let view = self.view.load(Ordering::Acquire);
        if view & 3 == CLOSED && self.forced.load(Ordering::Relaxed) == NOT_FORCED {
            return Admission::Admitted(Permit::new(view >> 2, false));
        }
        self.admit_slow(view)
    }

    #[inline]
    fn report(&self, permit: Permit, outcome: Outcome) {
        let generation = permit.generation();
        if generation & LOCAL_PERMIT == 0 && !permit.is_probe() {
            self.count(outcome);
        } else {
            self.report_slow(permit, outcome);
        }
    }

    fn state(&self) -> CircuitState {
        match self.forced.load(Ordering::Relaxed) {
            FORCED_OPEN => return CircuitState::ForcedOpen,
            FORCED_CLOSED => return CircuitState::ForcedClosed,
            _ => {}
        }
        let view = self.view.load(Ordering::Acquire);
        match (view & 3, self.mode) {
            (DEGRADED, FailureMode::FallbackToLocal) => self.local.state(),
            (DEGRADED, FailureMode::FailOpen) => CircuitState::ForcedClosed,
            (DEGRADED, FailureMode::FailClosed) => CircuitState::ForcedOpen,
            (code, _) => to_state(code),
        }
    }

    fn metrics(&self) -> Metrics {
        let state = self.state();
        let mut metrics = Metrics::new(state);
        if state == CircuitState::Open {
            metrics.retry_after = Some(Duration::from_micros(
                self.retry_after_us.load(Ordering::Relaxed),
            ));
        }
        metrics
    }

    fn force(&self, to: CircuitState) {
        let forced = match to {
            CircuitState::ForcedOpen => FORCED_OPEN,
            CircuitState::ForcedClosed => FORCED_CLOSED,
            _ => NOT_FORCED,
        };
        let before = self.forced.swap(forced, Ordering::AcqRel);
        if before != forced {
            let from = if before == NOT_FORCED {
                self.state_unforced()
            } else {
                forced_state(before)
            };
            let to = if forced == NOT_FORCED {
                self.state_unforced()
            } else {
                forced_state(forced)
            };
            self.observers.emit(|| Event::CircuitStateChanged {
                name: self.name.clone(),
                from,
                to,
                reason: "forced in this process".into(),
            });
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl Inner {
    fn state_unforced(&self) -> CircuitState {
        to_state(self.view.load(Ordering::Acquire) & 3)
    }

    fn admit_slow(&self, view: u64) -> Admission {
        match self.forced.load(Ordering::Relaxed) {
            FORCED_OPEN => return Admission::Refused(open(Duration::MAX)),
            FORCED_CLOSED => return Admission::Admitted(Permit::new(view >> 2, false)),
            _ => {}
        }
        match view & 3 {
            CLOSED => Admission::Admitted(Permit::new(view >> 2, false)),
            OPEN => Admission::Refused(open(Duration::from_micros(
                self.retry_after_us.load(Ordering::Relaxed),
            ))),
            HALF_OPEN => match self.me.upgrade() {
                Some(me) => {
                    Admission::Decide(Box::pin(async move { me.ask_probe(view >> 2).await }))
                }
                None => Admission::Refused(open(self.sync_interval)),
            },
            _ => self.admit_degraded(view),
        }
    }

    /// Admission while Redis is unusable: the failure mode decides.
    fn admit_degraded(&self, view: u64) -> Admission {
        match self.mode {
            FailureMode::FailClosed => Admission::Refused(open(self.sync_interval)),
            FailureMode::FailOpen => Admission::Admitted(Permit::new(view >> 2, false)),
            FailureMode::FallbackToLocal => match self.local.admit() {
                Admission::Admitted(permit) => Admission::Admitted(Permit::new(
                    permit.generation() | LOCAL_PERMIT,
                    permit.is_probe(),
                )),
                other => other,
            },
        }
    }

    /// Asks Redis for one of the half-open probe slots.
    async fn ask_probe(&self, known: u64) -> Result<Permit, CircuitOpen> {
        let Ok(reply) = self.run_script("probe", known, 0, 0).await else {
            // Redis failed while asked: the failure mode decides this call.
            return match self.admit_degraded(self.view.load(Ordering::Acquire)) {
                Admission::Admitted(permit) => Ok(permit),
                Admission::Refused(refusal) => Err(refusal),
                Admission::Decide(_) => Err(CircuitOpen {
                    retry_after: self.sync_interval,
                }),
            };
        };
        if reply.admitted == 0 {
            return Err(CircuitOpen {
                retry_after: Duration::from_micros(reply.left_us),
            });
        }
        self.probes_admitted.fetch_add(1, Ordering::Relaxed);
        Ok(Permit::new(reply.generation, true))
    }

    #[inline]
    fn count(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Failure => &self.failures,
            Outcome::Success => &self.successes,
            Outcome::Neither => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A report of a probe or of a call the local fallback admitted.
    fn report_slow(&self, permit: Permit, outcome: Outcome) {
        let generation = permit.generation();
        if generation & LOCAL_PERMIT != 0 {
            self.local.report(
                Permit::new(generation & !LOCAL_PERMIT, permit.is_probe()),
                outcome,
            );
            self.count(outcome);
            return;
        }
        let code = match outcome {
            Outcome::Failure => 0,
            Outcome::Success => 1,
            Outcome::Neither => 2,
        };
        self.probe_reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((generation, code));
        self.wake_sync.raise();
    }

    /// One script call; updates the local view from the reply, or marks the
    /// breaker degraded when Redis fails.
    async fn run_script(&self, op: &str, known: u64, a: u64, b: u64) -> Result<Reply, ()> {
        let args = self.args;
        let out = self
            .store
            .run(|mut c| {
                let mut inv = self.script.key(&self.keys[0]);
                inv.key(&self.keys[1])
                    .arg(op)
                    .arg(known)
                    .arg(a)
                    .arg(b)
                    .arg(args.bucket_us)
                    .arg(args.buckets)
                    .arg(args.minimum_calls)
                    .arg(args.rate_permille)
                    .arg(args.open_us)
                    .arg(args.probes)
                    .arg(args.ttl_ms);
                async move { inv.invoke_async::<(u64, u64, u64, u64, u64)>(&mut c).await }
            })
            .await;
        match out {
            Ok((state, generation, left_us, admitted, rebuilt)) => {
                let reply = Reply {
                    state,
                    generation,
                    left_us,
                    admitted,
                };
                self.learn(reply, rebuilt == 1);
                Ok(reply)
            }
            Err(e) => {
                self.degrade(&e.to_string());
                Err(())
            }
        }
    }

    fn learn(&self, reply: Reply, rebuilt: bool) {
        self.retry_after_us.store(reply.left_us, Ordering::Relaxed);
        let new = (reply.generation << 2) | (reply.state & 3);
        let old = self.view.swap(new, Ordering::AcqRel);
        if old & 3 == DEGRADED {
            self.observers.emit(|| Event::StoreModeChanged {
                name: self.name.clone(),
                degraded: false,
                reason: "shared: redis answered again".into(),
            });
        }
        if rebuilt {
            self.observers.emit(|| Event::StoreModeChanged {
                name: self.name.clone(),
                degraded: false,
                reason: "shared: state key missing or corrupted, rebuilt as closed".into(),
            });
        }
        let (from, to) = (old & 3, new & 3);
        if from != to && from != DEGRADED {
            self.observers.emit(|| Event::CircuitStateChanged {
                name: self.name.clone(),
                from: to_state(from),
                to: to_state(to),
                reason: format!("shared state, generation {}", reply.generation),
            });
        }
    }

    fn degrade(&self, why: &str) {
        let old = self.view.load(Ordering::Acquire);
        if old & 3 == DEGRADED {
            return;
        }
        // Keep the generation: counts made while degraded are pushed with it
        // on recovery, and dropped if the shared state moved on meanwhile.
        if self
            .view
            .compare_exchange(
                old,
                (old & !3) | DEGRADED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            if self.mode == FailureMode::FallbackToLocal {
                // Start from a closed local breaker, or (if the shared one was
                // open) an open one, so an outage does not reopen the gates.
                if old & 3 == OPEN {
                    self.local.force_open();
                } else {
                    self.local.reset();
                }
            }
            self.observers.emit(|| Event::StoreModeChanged {
                name: self.name.clone(),
                degraded: true,
                reason: format!("{}: {why}", describe(self.mode)),
            });
        }
    }

    async fn sync(&self) {
        let reports: Vec<(u64, u64)> = std::mem::take(
            &mut *self
                .probe_reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (generation, code) in reports {
            // Lost with Redis: the probe's slot stays taken until the state
            // key's generation moves on (a reopen by another probe, or the
            // key's TTL). Nothing else to do safely.
            let _ = self.run_script("done", generation, code, 0).await;
        }
        let s = self.successes.swap(0, Ordering::AcqRel);
        let f = self.failures.swap(0, Ordering::AcqRel);
        let known = self.view.load(Ordering::Acquire) >> 2;
        if self.run_script("sync", known, s, f).await.is_err() {
            // Keep the counts for the next try (they carry this generation).
            self.successes.fetch_add(s, Ordering::AcqRel);
            self.failures.fetch_add(f, Ordering::AcqRel);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Reply {
    state: u64,
    generation: u64,
    left_us: u64,
    admitted: u64,
}

/// A refusal in staunch's shape.
fn open(retry_after: Duration) -> CircuitOpen {
    CircuitOpen { retry_after }
}

fn to_state(code: u64) -> CircuitState {
    match code {
        CLOSED => CircuitState::Closed,
        OPEN => CircuitState::Open,
        HALF_OPEN => CircuitState::HalfOpen,
        // Degraded: the local breaker decides; report it as closed-ish.
        _ => CircuitState::ForcedClosed,
    }
}

fn forced_state(code: u8) -> CircuitState {
    if code == FORCED_OPEN {
        CircuitState::ForcedOpen
    } else {
        CircuitState::ForcedClosed
    }
}

impl RedisBreakerBuilder {
    /// Judge the failure rate over the last `length`, in `buckets` buckets.
    #[must_use]
    pub fn time_window(mut self, length: Duration, buckets: u32) -> Self {
        self.window = length;
        self.buckets = buckets;
        self
    }

    /// How many calls (across all processes) the window must hold before it may trip.
    #[must_use]
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = n;
        self
    }

    /// Trip when at least this share of the window's calls failed (in `(0, 1]`).
    #[must_use]
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }

    /// Stay open this long after a trip, on the Redis server's clock.
    #[must_use]
    pub fn open_duration(mut self, d: Duration) -> Self {
        self.open = d;
        self
    }

    /// How many probes half-open admits across all processes; that many
    /// successes close it, one failure reopens it.
    #[must_use]
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.probes = n;
        self
    }

    /// How often [`RedisBreaker::sync_task`] pushes counts and pulls state:
    /// the bound on how stale a process's view is (plus one round trip).
    #[must_use]
    pub fn sync_interval(mut self, d: Duration) -> Self {
        self.sync_interval = d;
        self
    }

    /// What to do while Redis is unusable.
    #[must_use]
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.mode = mode;
        self
    }

    /// Which of the operation's own errors (of type `E`) count as failures;
    /// the others count as successes (a 404 is an answer, not an outage).
    /// Errors of other types count as failures. It is the local breaker's
    /// rule ([`CircuitBreakerBuilder::failure_if`](staunch::breaker::CircuitBreakerBuilder::failure_if)),
    /// used both for the shared counts and while Redis is unusable.
    ///
    /// ```no_run
    /// use staunch_redis::{RedisBreaker, RedisStore};
    /// use staunch_tokio::Tokio;
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rt = Tokio::current()?;
    /// let store = RedisStore::open("redis://127.0.0.1:6379", Duration::from_millis(50), rt.clone())?;
    /// let breaker = RedisBreaker::builder(store, rt, "inventory")
    ///     .failure_if(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound)
    ///     .build()?;
    /// # let _ = breaker;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn failure_if<E: 'static>(
        mut self,
        is_failure: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.local = self.local.failure_if(is_failure);
        self
    }

    /// Where state changes and mode switches are reported.
    #[must_use]
    pub fn observers(mut self, observers: Observers) -> Self {
        self.observers = observers;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a name unfit for a Redis key, a window under 1 ms
    /// per bucket, 0 or over 1000 buckets, a rate outside `(0, 1]`, a zero
    /// open duration, 0 probes or a zero sync interval.
    pub fn build(self) -> Result<RedisBreaker, ConfigError> {
        check_name(&self.name)?;
        if self.buckets == 0 || self.buckets > 1000 {
            return Err(ConfigError::new("time_window", "use 1 to 1000 buckets"));
        }
        let bucket_us =
            u64::try_from(self.window.as_micros() / u128::from(self.buckets)).unwrap_or(u64::MAX);
        if bucket_us < 1000 {
            return Err(ConfigError::new(
                "time_window",
                "each bucket must last at least 1 ms: lengthen the window or use fewer buckets",
            ));
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(ConfigError::new(
                "failure_rate",
                "must lie in (0, 1], e.g. 0.5",
            ));
        }
        if self.open.is_zero() || self.open > Duration::from_secs(86_400 * 365) {
            return Err(ConfigError::new(
                "open_duration",
                "must lie between 1 µs and a year",
            ));
        }
        if self.probes == 0 {
            return Err(ConfigError::new("half_open_probes", "must be at least 1"));
        }
        if self.sync_interval.is_zero() {
            return Err(ConfigError::new(
                "sync_interval",
                "must be above zero, e.g. 5 ms",
            ));
        }
        let local = self
            .local
            .time_window(self.window, self.buckets)
            .minimum_calls(self.minimum_calls)
            .failure_rate(self.failure_rate)
            .open_duration(self.open)
            .half_open_probes(self.probes)
            .name(self.name.clone())
            .observers(self.observers.clone())
            .build()?;
        let open_us = u64::try_from(self.open.as_micros()).unwrap_or(u64::MAX);
        // Long enough to outlive any window and open period, so an idle
        // breaker's keys vanish on their own but a live one never loses state.
        let ttl_ms = u64::try_from(
            (self.window.max(self.open) * 2)
                .max(Duration::from_secs(60))
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rate_permille = (self.failure_rate * 1000.0).ceil() as u32;
        let inner = Arc::new_cyclic(|me| Inner {
            keys: [
                format!("staunch:breaker:{{{}}}:state", self.name),
                format!("staunch:breaker:{{{}}}:window", self.name),
            ],
            store: self.store,
            name: self.name,
            view: AtomicU64::new(CLOSED),
            forced: AtomicU8::new(NOT_FORCED),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retry_after_us: AtomicU64::new(0),
            probes_admitted: AtomicU64::new(0),
            probe_reports: Mutex::new(Vec::new()),
            wake_sync: Arc::default(),
            me: me.clone(),
            local: local.clone(),
            mode: self.mode,
            observers: self.observers,
            script: redis::Script::new(SCRIPT),
            args: Args {
                bucket_us,
                buckets: self.buckets,
                minimum_calls: self.minimum_calls,
                rate_permille,
                open_us,
                probes: self.probes,
                ttl_ms,
            },
            sync_interval: self.sync_interval,
        });
        Ok(RedisBreaker {
            breaker: local.with_store(inner.clone()),
            inner,
        })
    }
}

fn describe(mode: FailureMode) -> &'static str {
    match mode {
        FailureMode::FallbackToLocal => "fallback to the local breaker",
        FailureMode::FailOpen => "fail open",
        FailureMode::FailClosed => "fail closed",
    }
}

/// A breaker's name is part of its Redis keys: two breakers sharing a name
/// share state, so the name must be explicit and unambiguous.
fn check_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.contains(['{', '}', ':']) || name.len() > 200 {
        return Err(ConfigError::new(
            "name",
            "give a non-empty name of at most 200 bytes without '{', '}' or ':' (it is part of the Redis key, and two breakers sharing a name share state)",
        ));
    }
    Ok(())
}

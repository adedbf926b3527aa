use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::runtime::Timer;
use crate::testing::VirtualRuntime;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn limiter(rt: &VirtualRuntime, per_second: u32, burst: u32) -> RateLimiter {
    RateLimiter::builder(rt.clone(), Rate::per_second(per_second))
        .burst(burst)
        .epoch(Duration::from_secs(1_700_000_000))
        .build()
        .expect("valid limiter")
}

#[test]
fn bad_configuration_gets_errors_that_say_what_to_fix() {
    let rt = VirtualRuntime::new();
    let zero_rate = RateLimiter::builder(rt.clone(), Rate::per_second(0)).build();
    assert_eq!(zero_rate.unwrap_err().setting, "rate");
    let zero_period = RateLimiter::builder(rt.clone(), Rate::new(1, Duration::ZERO)).build();
    assert!(zero_period.unwrap_err().to_string().contains("period"));
    let too_slow = RateLimiter::builder(rt.clone(), Rate::new(1, Duration::MAX)).build();
    assert!(too_slow.unwrap_err().to_string().contains("584 years"));
    let zero_burst = RateLimiter::builder(rt.clone(), Rate::per_second(1))
        .burst(0)
        .build();
    let err = zero_burst.unwrap_err();
    assert_eq!(err.setting, "burst");
    assert!(err.to_string().contains("at least 1"));
    // One call a century, ten at once: a burst spanning a millennium, past
    // what a u64 of nanoseconds holds.
    let century = Duration::from_secs(100 * 365 * 86_400);
    let too_long_a_burst = RateLimiter::builder(rt.clone(), Rate::new(1, century))
        .burst(10)
        .build();
    let err = too_long_a_burst.unwrap_err();
    assert_eq!(err.setting, "burst");
    assert!(err.to_string().contains("584 years"));
    // A century-long burst from an epoch in 2540 would end past 2554.
    let too_late = RateLimiter::builder(rt.clone(), Rate::new(1, century))
        .epoch(Duration::from_secs(18_000_000_000))
        .build();
    let err = too_late.unwrap_err();
    assert_eq!(err.setting, "epoch");
    assert!(err.to_string().contains("2554"));
    let no_keys = KeyedRateLimiter::<u32>::builder(RateLimiter::builder(rt, Rate::per_second(1)))
        .max_keys(0)
        .build();
    assert_eq!(no_keys.unwrap_err().setting, "max_keys");
}

#[test]
fn a_clock_at_the_end_of_u64_nanoseconds_stops_there_and_still_limits() {
    let rt = VirtualRuntime::new();
    let limiter = limiter(&rt, 10, 2);
    // Past what a u64 of nanoseconds holds: the timer saturates, and the
    // limiter's clock stops `burst·T` short of the end, so no sum overflows.
    rt.advance(Duration::from_secs(u64::MAX / 1_000_000_000 + 1));
    assert!(limiter.check().is_ok());
    assert!(limiter.check_n(1).is_ok());
    let refused = limiter.check().unwrap_err();
    assert_eq!(refused.retry_after, ms(100));
    rt.advance(Duration::from_secs(1));
    assert!(limiter.check().is_err(), "time no longer passes for it");
}

/// A check decides on the quiet path while the timer's reading is at most
/// the clock's last reading, and on the clamped path from the next
/// nanosecond on: the two meet exactly there, and the clock stops there.
#[test]
fn the_quiet_and_the_clamped_paths_meet_at_the_clocks_last_reading() {
    let rt = VirtualRuntime::new();
    // 10 a second, burst 2: `burst·T` is 200 ms. With this epoch the clock
    // stops when the timer reads 5 s.
    let span = ms(200).as_nanos() as u64;
    let last = Duration::from_secs(5).as_nanos() as u64;
    let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(10))
        .burst(2)
        .epoch(Duration::from_nanos(u64::MAX - span - last))
        .build()
        .unwrap();
    rt.advance(Duration::from_nanos(last - 1));
    assert!(limiter.check().is_ok());
    rt.advance(Duration::from_nanos(1)); // the last reading, still quiet
    assert!(limiter.check().is_ok());
    // Two calls 1 ns apart: the TAT is the stopping point plus two
    // intervals, less that nanosecond.
    let stop = Duration::from_nanos(u64::MAX - span);
    assert_eq!(
        limiter.theoretical_arrival(),
        stop + ms(200) - Duration::from_nanos(1)
    );
    let wait = ms(100) - Duration::from_nanos(1);
    assert_eq!(limiter.check().unwrap_err().retry_after, wait);
    rt.advance(Duration::from_nanos(1)); // the first clamped reading
    assert_eq!(limiter.check().unwrap_err().retry_after, wait);
    rt.advance(Duration::from_secs(3600));
    assert_eq!(
        limiter.check().unwrap_err().retry_after,
        wait,
        "the clock stopped at its last reading"
    );
}

#[test]
fn a_cost_over_the_burst_is_refused_as_never_admissible() {
    let rt = VirtualRuntime::new();
    let limiter = limiter(&rt, 10, 3);
    let err = limiter.check_n(4).unwrap_err();
    assert_eq!(err, RateError::CostOverBurst { cost: 4, burst: 3 });
    assert_eq!(err.retry_after(), None);
    assert!(err.to_string().contains("can never be admitted"));
    let waited = rt.block_on(limiter.until_ready_n(4)).unwrap();
    assert_eq!(waited, Err(RateError::CostOverBurst { cost: 4, burst: 3 }));
    assert!(limiter.check_n(3).is_ok(), "the refused cost took nothing");
}

#[test]
fn the_rate_is_rounded_to_be_stricter_never_looser() {
    let rt = VirtualRuntime::new();
    let limiter = RateLimiter::builder(rt, Rate::new(3, Duration::from_nanos(10)))
        .build()
        .unwrap();
    assert_eq!(limiter.emission_interval(), Duration::from_nanos(4));
}

#[test]
fn until_ready_refuses_at_once_when_the_wait_exceeds_the_maximum() {
    let rt = VirtualRuntime::new();
    let limiter = RateLimiter::builder(rt.clone(), Rate::per_second(10))
        .burst(2)
        .max_wait(ms(150))
        .build()
        .unwrap();
    rt.block_on({
        let rt = rt.clone();
        async move {
            let start = rt.now();
            limiter.check_n(2).unwrap();
            // A cost of 2 would need 200 ms: over the maximum, refused at once.
            let refused = limiter.until_ready_n(2).await;
            assert_eq!(rt.now(), start, "refusing must not wait");
            assert_eq!(
                refused,
                Err(RateError::Limited(RateLimited {
                    retry_after: ms(200)
                }))
            );
            // A cost of 1 needs 100 ms: within the maximum, so it waits.
            limiter.until_ready().await.unwrap();
            assert_eq!(rt.now() - start, ms(100));
        }
    })
    .unwrap();
}

/// governor #252: its times are relative to each limiter's creation, so
/// limiters built at different times disagree about shared state. Here the
/// state is an absolute time, so they agree.
#[test]
fn limiters_built_at_different_times_agree_on_shared_state() {
    let rt = VirtualRuntime::new();
    let shared = |state: &std::sync::Arc<crate::sync::AtomicU64>| {
        RateLimiter::builder(rt.clone(), Rate::per_second(10))
            .burst(2)
            .epoch(Duration::from_secs(1_700_000_000))
            .build_with_store(state.clone())
            .expect("valid limiter")
    };
    let state = std::sync::Arc::new(crate::sync::AtomicU64::new(0));
    let first = shared(&state);
    rt.block_on({
        let rt = rt.clone();
        async move {
            rt.sleep(Duration::from_secs(5)).await;
        }
    })
    .unwrap();
    let second = shared(&state);
    assert!(first.check().is_ok());
    assert!(second.check().is_ok());
    // The burst is spent, whichever limiter asks.
    assert_eq!(first.check().unwrap_err().retry_after, ms(100));
    assert_eq!(second.check().unwrap_err().retry_after, ms(100));
    let tat = first.theoretical_arrival();
    assert_eq!(tat, second.theoretical_arrival());
    assert_eq!(
        tat,
        Duration::from_secs(1_700_000_000 + 5) + ms(200),
        "the stored time is Unix time, not time since the limiter was built"
    );
}

#[test]
fn the_default_epoch_is_the_wall_clock() {
    let rt = VirtualRuntime::new();
    let limiter = RateLimiter::builder(rt, Rate::per_second(1))
        .build()
        .unwrap();
    limiter.check().unwrap();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let tat = limiter.theoretical_arrival();
    assert!(tat > unix_now - Duration::from_secs(60) && tat < unix_now + Duration::from_secs(60));
}

/// governor #171: a keyed limiter grows without bound as new keys come.
#[test]
fn a_keyed_limiter_never_tracks_more_than_its_cap_and_forgets_idle_keys() {
    let rt = VirtualRuntime::new();
    let keyed: KeyedRateLimiter<u64> =
        KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(1))
            .max_keys(1_000)
            .build()
            .unwrap();
    let mut refused_full = 0;
    rt.block_on({
        let rt = rt.clone();
        let keyed = keyed.clone();
        async move {
            for key in 0..100_000u64 {
                match keyed.check(&key) {
                    Ok(()) => {}
                    Err(RateError::KeysFull { retry_after, .. }) => {
                        assert!(retry_after <= ms(100));
                        refused_full += 1;
                    }
                    Err(other) => panic!("unexpected {other}"),
                }
                assert!(keyed.len() <= 1_000);
                // 100 000 new keys a second, each busy for 100 ms: far
                // more busy keys than the cap.
                if key % 100 == 0 {
                    rt.sleep(ms(1)).await;
                }
            }
            assert!(refused_full > 0, "the cap was reached and said so");
            rt.sleep(ms(100)).await;
            keyed.evict_idle();
            assert_eq!(keyed.len(), 0, "every key went idle and was evicted");
        }
    })
    .unwrap();
}

#[test]
fn evicting_an_idle_key_changes_no_decision() {
    let rt = VirtualRuntime::new();
    let keyed: KeyedRateLimiter<&str> =
        KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::per_second(10)).burst(2))
            .build()
            .unwrap();
    keyed.check(&"a").unwrap();
    keyed.check(&"a").unwrap();
    assert_eq!(
        keyed.check(&"a"),
        Err(RateLimited {
            retry_after: ms(100)
        }
        .into())
    );
    keyed.evict_idle();
    assert_eq!(keyed.len(), 1, "a busy key is kept");
    rt.block_on({
        let rt = rt.clone();
        async move { rt.sleep(ms(200)).await }
    })
    .unwrap();
    keyed.evict_idle();
    assert_eq!(keyed.len(), 0);
    keyed.check(&"a").unwrap();
    keyed.check(&"a").unwrap();
    assert!(
        keyed.check(&"a").is_err(),
        "a fresh key gets exactly one burst"
    );
}

#[test]
fn a_full_keyed_limiter_still_serves_known_keys_exactly() {
    let rt = VirtualRuntime::new();
    let keyed: KeyedRateLimiter<u8> =
        KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::per_second(1)).burst(1))
            .max_keys(1)
            .build()
            .unwrap();
    keyed.check(&1).unwrap();
    assert_eq!(
        keyed.check(&2),
        Err(RateError::KeysFull {
            max_keys: 1,
            retry_after: Duration::from_secs(1)
        })
    );
    assert_eq!(
        keyed.check(&1),
        Err(RateLimited {
            retry_after: Duration::from_secs(1)
        }
        .into())
    );
}

/// The plain leaky-bucket formulation of the same limit, in exact integers.
struct Reference {
    emission: u128,
    capacity: u128,
    level: u128,
    last: u128,
}

impl Reference {
    fn check(&mut self, now: u128, cost: u32) -> Result<(), u128> {
        let drained = now - self.last;
        let level = self.level.saturating_sub(drained);
        let need = u128::from(cost) * self.emission;
        if level + need <= self.capacity {
            self.level = level + need;
            self.last = now;
            Ok(())
        } else {
            Err(level + need - self.capacity)
        }
    }
}

proptest! {
    #[test]
    fn gcra_agrees_with_a_leaky_bucket_reference(
        count in 1u32..1000,
        period_ms in 1u64..5000,
        burst in 1u32..20,
        steps in proptest::collection::vec((0u64..3_000_000_000, 0u32..25), 1..60),
    ) {
        let rt = VirtualRuntime::new();
        let limiter = RateLimiter::builder(rt.clone(), Rate::new(count, ms(period_ms)))
            .burst(burst)
            .epoch(Duration::ZERO)
            .build()
            .unwrap();
        let emission = u128::from(limiter.emission_interval().as_nanos() as u64);
        let mut reference = Reference {
            emission,
            capacity: emission * u128::from(burst),
            level: 0,
            last: 0,
        };
        let mut now = 0u128;
        for (advance, cost) in steps {
            now += u128::from(advance);
            rt.block_on({
                let rt = rt.clone();
                async move { rt.sleep(Duration::from_nanos(advance)).await }
            }).unwrap();
            prop_assert_eq!(rt.now().since_origin().as_nanos(), now);
            let ours = limiter.check_n(cost);
            if cost > burst {
                prop_assert_eq!(ours, Err(RateError::CostOverBurst { cost, burst }));
                continue;
            }
            let theirs = reference.check(now, cost);
            match (ours, theirs) {
                (Ok(()), Ok(())) => {}
                (Err(RateError::Limited(l)), Err(wait)) => {
                    prop_assert_eq!(l.retry_after.as_nanos(), wait);
                }
                (ours, theirs) => prop_assert!(false, "at {now}: ours {ours:?}, reference {theirs:?}"),
            }
        }
    }
}

#[test]
fn admissions_and_refusals_with_their_wait_are_events() {
    use crate::observe::{Event, Observers};
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let observers = Observers::new().with({
        let seen = seen.clone();
        move |e: &Event| seen.lock().unwrap().push(e.clone())
    });
    let rt = VirtualRuntime::new();
    let limiter = RateLimiter::builder(rt, Rate::per_second(10))
        .burst(1)
        .name("api")
        .observers(observers)
        .build()
        .unwrap();
    limiter.check().unwrap();
    limiter.check_n(1).unwrap_err();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            Event::RateAdmitted {
                name: "api".into(),
                cost: 1
            },
            Event::RateLimited {
                name: "api".into(),
                cost: 1,
                retry_after: ms(100)
            },
        ]
    );
}

/// A TAT behind a mutex whose compare-and-swap fails spuriously every
/// third call: the limiter must still count each admission exactly once.
#[derive(Default)]
struct Flaky {
    tat: std::sync::Mutex<u64>,
    calls: std::sync::atomic::AtomicU64,
}

impl RateStore for Flaky {
    fn load(&self) -> u64 {
        *self.tat.lock().unwrap()
    }
    fn compare_exchange(&self, current: u64, new: u64) -> Result<(), u64> {
        let mut tat = self.tat.lock().unwrap();
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if *tat != current || n % 3 == 2 {
            return Err(*tat);
        }
        *tat = new;
        Ok(())
    }
}

#[test]
fn limiters_sharing_a_custom_store_share_one_exact_limit_under_contention() {
    let rt = VirtualRuntime::new();
    let store = std::sync::Arc::new(Flaky::default());
    let build = || {
        RateLimiter::builder(rt.clone(), Rate::per_second(1))
            .burst(40)
            .epoch(Duration::from_secs(1_700_000_000))
            .build_with_store(store.clone())
            .unwrap()
    };
    let limiters: Vec<_> = (0..4).map(|_| build()).collect();
    // The clock stands still: exactly the burst is admitted, whatever the
    // races and the spurious failures.
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = limiters
            .iter()
            .map(|l| s.spawn(move || (0..100).filter(|_| l.check().is_ok()).count()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 40);
    // The state is the store's: an absolute time, one second per call.
    let tat = limiters[0].theoretical_arrival();
    assert_eq!(tat, Duration::from_secs(1_700_000_000 + 40));
    assert_eq!(limiters[3].theoretical_arrival(), tat);
    rt.advance(Duration::from_secs(1));
    assert!(limiters[2].check().is_ok());
    assert!(limiters[1].check().is_err());
}

#[test]
fn a_rate_faster_than_one_call_a_nanosecond_is_a_config_error_not_a_silent_cap() {
    let rt = VirtualRuntime::new();
    for too_fast in [
        Rate::per_second(u32::MAX),
        Rate::new(u32::MAX, Duration::from_nanos(1)),
        Rate::new(2, Duration::from_nanos(1)),
    ] {
        let err = RateLimiter::builder(rt.clone(), too_fast)
            .build()
            .expect_err("no limiter can space calls under a nanosecond apart");
        assert_eq!(err.setting, "rate");
        assert!(err.to_string().contains("one call per nanosecond"), "{err}");
        let keyed = KeyedRateLimiter::<u32>::builder(RateLimiter::builder(rt.clone(), too_fast));
        assert_eq!(keyed.build().unwrap_err().setting, "rate");
    }
    // The fastest rate there is: one call a nanosecond, exactly.
    let fastest = RateLimiter::builder(rt.clone(), Rate::per_second(1_000_000_000))
        .burst(1)
        .build()
        .unwrap();
    assert_eq!(fastest.emission_interval(), Duration::from_nanos(1));
    assert!(fastest.check().is_ok());
    assert_eq!(
        fastest.check().unwrap_err().retry_after,
        Duration::from_nanos(1)
    );
}

#[test]
fn a_keyed_limiter_tracks_as_many_distinct_keys_as_its_cap_however_they_hash() {
    let rt = VirtualRuntime::new();
    for cap in [100usize, 128, 1000, 10_000] {
        let keyed: KeyedRateLimiter<u64> = KeyedRateLimiter::builder(
            RateLimiter::builder(rt.clone(), Rate::per_second(1)).burst(1),
        )
        .max_keys(cap)
        .build()
        .unwrap();
        // Before, each shard had an equal share of the cap: with 1000, 74
        // of 1000 busy keys were refused as if the cap were reached.
        for key in 0..cap as u64 {
            assert_eq!(keyed.check(&key), Ok(()), "key {key} of a cap of {cap}");
        }
        assert_eq!(keyed.len(), cap);
        assert_eq!(
            keyed.check(&u64::MAX),
            Err(RateError::KeysFull {
                max_keys: cap,
                retry_after: Duration::from_secs(1)
            })
        );
        assert_eq!(keyed.len(), cap, "never more than the cap");
    }
}

#[test]
fn a_full_keyed_limiter_admits_a_new_key_as_soon_as_any_key_goes_idle() {
    let rt = VirtualRuntime::new();
    let keyed: KeyedRateLimiter<u64> =
        KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::per_second(1)).burst(1))
            .max_keys(1000)
            .build()
            .unwrap();
    keyed.check(&0).unwrap(); // idle at 1 s
    rt.advance(ms(500));
    for key in 1..1000 {
        keyed.check(&key).unwrap(); // idle at 1.5 s
    }
    rt.advance(ms(100));
    let full = keyed.check(&5000).unwrap_err();
    assert_eq!(full.retry_after(), Some(ms(400)), "key 0 goes idle first");
    rt.advance(ms(399));
    assert_eq!(keyed.check(&5001).unwrap_err().retry_after(), Some(ms(1)));
    rt.advance(ms(1));
    // Key 0, in whichever shard, is idle: its place goes to the new key.
    assert_eq!(keyed.check(&5002), Ok(()));
    assert_eq!(keyed.len(), 1000);
    assert!(keyed.check(&5003).is_err());
    assert!(
        keyed.check(&0).is_err(),
        "key 0 was forgotten and the cap is reached again"
    );
}

//! Conformance cases for `rate` (GCRA limiters) and `adaptive`
//! (concurrency limits), on every runtime.

use std::sync::Mutex;
use std::time::Duration;

use staunch::Error;
use staunch::adaptive::{Aimd, Algorithm, ConcurrencyLimit, Gradient2};
use staunch::gather::gather as join_all;
use staunch::policy::Policy;
use staunch::rate::{KeyedRateLimiter, Rate, RateError, RateLimited, RateLimiter};
use staunch::runtime::Instant;
use staunch::timeout::timeout;

use crate::harness::{Gauge, TestRuntime, ms};

/// A fixed epoch, so the virtual clock's limiter is the same on every run.
const EPOCH: Duration = Duration::from_secs(1_700_000_000);

fn limiter<R: TestRuntime>(rt: &R, count: u32, period: Duration, burst: u32) -> RateLimiter {
    RateLimiter::builder(rt.clone(), Rate::new(count, period))
        .burst(burst)
        .epoch(EPOCH)
        .build()
        .expect("valid limiter")
}

/// A scripted arrival pattern is admitted at exactly the GCRA instants:
/// a burst of two at once, then one per interval, and a fresh burst after
/// an idle spell. Real runtimes are never admitted early.
pub async fn rate_limiter_admits_a_scripted_arrival_pattern_at_exact_instants<R: TestRuntime>(
    rt: R,
) {
    // 10 per second (one per 100 ms), burst 2. Arrivals (ms after start)
    // and the instants GCRA admits them at, one caller after another.
    let arrivals = [0, 0, 0, 50, 250, 1000, 1000, 1000];
    let expected = [0, 0, 100, 200, 300, 1000, 1000, 1100];
    let limiter = limiter(&rt, 10, Duration::from_secs(1), 2);
    let start = rt.now();
    let mut admitted = Vec::new();
    for arrival in arrivals {
        rt.sleep_until(start + ms(arrival)).await;
        limiter.until_ready().await.expect("no maximum wait");
        admitted.push(rt.now() - start);
    }
    for (i, (got, want)) in admitted.iter().zip(expected).enumerate() {
        assert!(
            *got >= ms(want),
            "arrival {i} admitted early at {got:?} (GCRA says {want} ms) on {}",
            R::NAME
        );
        if R::VIRTUAL_TIME {
            assert_eq!(*got, ms(want), "arrival {i}");
        } else {
            assert!(
                *got < ms(want) + Duration::from_secs(2),
                "arrival {i} on {}",
                R::NAME
            );
        }
    }
    if R::VIRTUAL_TIME {
        // After the last admission (TAT 1200 ms), `check` names the wait.
        assert_eq!(
            limiter.check(),
            Err(RateLimited {
                retry_after: ms(100)
            })
        );
    }
}

/// `check` answers at once: a burst is admitted, then a refusal names the
/// wait, and exactly after it the call is admitted.
pub async fn rate_limiter_check_names_the_wait_and_admits_right_after_it<R: TestRuntime>(rt: R) {
    let limiter = limiter(&rt, 5, Duration::from_secs(1), 3);
    for _ in 0..3 {
        limiter.check().expect("within the burst");
    }
    let refused = limiter.check().expect_err("the burst is spent");
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= ms(200));
    assert!(matches!(
        limiter.check_n(4),
        Err(RateError::CostOverBurst { cost: 4, burst: 3 })
    ));
    rt.sleep(refused.retry_after).await;
    limiter.check().expect("admitted once the wait is over");
}

/// A caller cancelled while waiting in `until_ready` holds nothing: the
/// next caller is admitted exactly as if it had never come.
pub async fn until_ready_cancelled_mid_wait_holds_nothing<R: TestRuntime>(rt: R) {
    let period = ms(200);
    let limiter = limiter(&rt, 1, period, 1);
    let start = rt.now();
    limiter.check().expect("a fresh limiter admits");
    let (cancelled, waited) = futures::join!(
        timeout(&rt, ms(100), limiter.until_ready()),
        limiter.until_ready()
    );
    assert!(
        cancelled.is_err(),
        "the first waiter was cancelled mid-wait"
    );
    waited.expect("the second waiter is admitted");
    let admitted = rt.now() - start;
    assert!(admitted >= period, "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(admitted, period);
    }
    // One interval after that admission the limiter is free again; had the
    // cancelled waiter reserved a slot, it would be busy for one more.
    rt.sleep_until(start + admitted + period).await;
    limiter.check().expect("the cancelled waiter took nothing");
}

/// A keyed limiter limits each key on its own.
pub async fn keyed_rate_limiter_limits_each_key_on_its_own<R: TestRuntime>(rt: R) {
    let keyed: KeyedRateLimiter<&str> =
        KeyedRateLimiter::builder(RateLimiter::builder(rt.clone(), Rate::new(1, ms(100))).burst(1))
            .max_keys(16)
            .build()
            .expect("valid keyed limiter");
    keyed.check(&"ann").expect("ann's first call");
    keyed.check(&"bob").expect("bob's first call");
    let before = rt.now();
    assert!(matches!(keyed.check(&"ann"), Err(RateError::Limited(_))));
    keyed
        .until_ready(&"ann")
        .await
        .expect("ann is admitted after her wait");
    let waited = rt.now() - before;
    assert!(waited > Duration::ZERO, "on {}", R::NAME);
    if R::VIRTUAL_TIME {
        assert_eq!(waited, ms(100));
    }
    assert_eq!(keyed.len(), 2);
}

/// A concurrency limit never lets more calls inside than its limit, queues
/// the rest first come first served, and grows while calls succeed.
pub async fn concurrency_limit_never_lets_more_than_its_limit_inside<R: TestRuntime>(rt: R) {
    let algorithms: [Algorithm; 2] = [Aimd::default().into(), Gradient2::default().into()];
    for algorithm in algorithms {
        let limit: ConcurrencyLimit = ConcurrencyLimit::builder(rt.clone(), algorithm)
            .initial_limit(3)
            .max_limit(3)
            .max_queued(20)
            .build()
            .expect("valid limit");
        let gauge = Gauge::new();
        let calls = (0..12).map(|_| {
            limit.call(async {
                let _inside = gauge.enter();
                rt.sleep(ms(2)).await;
                Ok::<(), ()>(())
            })
        });
        let outs = join_all(calls).await;
        assert!(outs.iter().all(Result::is_ok), "on {}", R::NAME);
        assert_eq!(gauge.peak(), 3, "on {}", R::NAME);
        assert_eq!((limit.inside(), limit.queued()), (0, 0));
    }
}

/// In a policy, a rate-limit refusal arrives as `Error::RateLimited` and
/// the operation does not run.
pub async fn policy_rate_limit_refuses_with_the_wait_and_runs_nothing<R: TestRuntime>(rt: R) {
    let policy: Policy = Policy::builder(rt.clone())
        .rate_limit(
            RateLimiter::builder(rt.clone(), Rate::new(1, Duration::from_secs(10)))
                .burst(1)
                .max_wait(Duration::ZERO)
                .build()
                .expect("valid limiter"),
        )
        .build()
        .expect("valid policy");
    let runs: Mutex<Vec<Instant>> = Mutex::new(Vec::new());
    let op = || {
        runs.lock().unwrap().push(rt.now());
        async { Ok::<_, &str>(7) }
    };
    assert_eq!(
        policy
            .run(|_| op())
            .await
            .expect("the first call is admitted"),
        7
    );
    let Err(Error::RateLimited(limited)) = policy.run(|_| op()).await else {
        panic!("the second call was not rate limited on {}", R::NAME)
    };
    assert!(limited.retry_after > Duration::from_secs(9));
    assert_eq!(runs.lock().unwrap().len(), 1, "a refused call never runs");
}

/// Lists this module's cases for [`for_each_case!`](crate::for_each_case).
#[macro_export]
macro_rules! rate_cases {
    ($m:ident $(, $($extra:tt)*)?) => {
        $m!($($($extra)*;)? rate::rate_limiter_admits_a_scripted_arrival_pattern_at_exact_instants);
        $m!($($($extra)*;)? rate::rate_limiter_check_names_the_wait_and_admits_right_after_it);
        $m!($($($extra)*;)? rate::until_ready_cancelled_mid_wait_holds_nothing);
        $m!($($($extra)*;)? rate::keyed_rate_limiter_limits_each_key_on_its_own);
        $m!($($($extra)*;)? rate::concurrency_limit_never_lets_more_than_its_limit_inside);
        $m!($($($extra)*;)? rate::policy_rate_limit_refuses_with_the_wait_and_runs_nothing);
    };
}

//! A simulated web with hosts that fail in the ways real ones do: flaky,
//! slow, down, rate-limited, and one that never answers at all.
//!
//! Everything is derived from a seed, so a crawl is reproducible: the same
//! seed gives the same links and the same faults on every runtime.

use std::time::Duration;

use staunch::runtime::Timer;
use staunch::testing::Faults;
use thiserror::Error;

/// How a simulated host behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Answers every request after 20-60 ms.
    Healthy,
    /// Answers after 30-80 ms, but fails with 503 on a share of requests.
    Flaky,
    /// Answers every request, after 250-450 ms.
    Slow,
    /// Fails every request with 503.
    Down,
    /// Accepts the connection and never answers.
    Tarpit,
    /// Answers 429 with a Retry-After hint on this share of requests.
    RateLimited(f64),
}

impl Behaviour {
    /// What the behaviour looks like from outside, in a few words.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Behaviour::Healthy => "healthy (20-60 ms)",
            Behaviour::Flaky => "flaky (40% answer 503)",
            Behaviour::Slow => "slow (250-450 ms)",
            Behaviour::Down => "down (always 503)",
            Behaviour::Tarpit => "tarpit (never answers)",
            Behaviour::RateLimited(_) => "rate-limited (429 + Retry-After)",
        }
    }
}

/// A host of the simulated web.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Host {
    /// The host name, e.g. `docs.example`.
    pub name: &'static str,
    /// How it behaves.
    pub behaviour: Behaviour,
}

/// The share of requests the flaky host fails.
pub const FLAKY_FAIL_RATE: f64 = 0.4;

/// The hosts of the simulated web; page `n` lives on host `n % HOSTS.len()`.
pub const HOSTS: [Host; 6] = [
    Host {
        name: "docs.example",
        behaviour: Behaviour::Healthy,
    },
    Host {
        name: "blog.example",
        behaviour: Behaviour::Flaky,
    },
    Host {
        name: "cdn.example",
        behaviour: Behaviour::Slow,
    },
    Host {
        name: "legacy.example",
        behaviour: Behaviour::Down,
    },
    Host {
        name: "tarpit.example",
        behaviour: Behaviour::Tarpit,
    },
    Host {
        name: "api.example",
        behaviour: Behaviour::RateLimited(0.5),
    },
];

/// Why a simulated fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    /// The server answered with an error status.
    #[error("{host} answered {status}")]
    Status {
        /// The host.
        host: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The server asked us to come back later.
    #[error("{host} answered 429 Too Many Requests; retry after {retry_after:?}")]
    TooManyRequests {
        /// The host.
        host: &'static str,
        /// The Retry-After hint.
        retry_after: Duration,
    },
}

/// A fetched page: its links to other pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The page number.
    pub id: u32,
    /// The pages it links to.
    pub links: Vec<u32>,
}

/// A seeded simulated web of `pages` pages.
#[derive(Debug, Clone)]
pub struct Site {
    seed: u64,
    pages: u32,
    /// The flaky host's failures come from staunch's own fault injection.
    flaky: Faults,
}

impl Site {
    /// A web of `pages` pages (at least 1) whose links and faults follow `seed`.
    #[must_use]
    pub fn new(seed: u64, pages: u32) -> Site {
        let flaky = Faults::seeded(seed)
            .fail_rate(FLAKY_FAIL_RATE)
            .build()
            .unwrap_or_else(|_| Faults::script([]));
        Site {
            seed,
            pages: pages.max(1),
            flaky,
        }
    }

    /// How many pages the web has.
    #[must_use]
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// The host page `id` lives on.
    #[must_use]
    pub fn host_of(&self, id: u32) -> Host {
        HOSTS[id as usize % HOSTS.len()]
    }

    /// The URL of page `id`.
    #[must_use]
    pub fn url(&self, id: u32) -> String {
        format!("https://{}/page/{id}", self.host_of(id).name)
    }

    /// The links on page `id`: three to five other pages.
    #[must_use]
    pub fn links(&self, id: u32) -> Vec<u32> {
        let mut rng = Rng::new(self.seed ^ (u64::from(id) << 20));
        let count = 3 + rng.below(3);
        (0..count)
            .map(|_| rng.below(u64::from(self.pages)) as u32)
            .filter(|&l| l != id)
            .collect()
    }

    /// Fetches page `id`; `attempt` (from 1) varies the faults between tries.
    ///
    /// # Errors
    ///
    /// [`FetchError`] as the page's host decides. A tarpit host never
    /// answers: only a timeout or a cancellation ends that future.
    pub async fn fetch<T: Timer>(
        &self,
        timer: &T,
        id: u32,
        attempt: u32,
    ) -> Result<Page, FetchError> {
        let host = self.host_of(id);
        let mut rng = Rng::new(
            self.seed ^ (u64::from(id) << 32) ^ u64::from(attempt).wrapping_mul(0x9E37_79B9),
        );
        let latency =
            |lo: u64, hi: u64, rng: &mut Rng| Duration::from_millis(lo + rng.below(hi - lo + 1));
        let page = || Page {
            id,
            links: self.links(id),
        };
        match host.behaviour {
            Behaviour::Healthy => {
                timer.sleep(latency(20, 60, &mut rng)).await;
                Ok(page())
            }
            Behaviour::Flaky => {
                let answer = timer.sleep(latency(30, 80, &mut rng));
                match self.flaky.inject(timer, answer).await {
                    Ok(()) => Ok(page()),
                    Err(_injected) => Err(FetchError::Status {
                        host: host.name,
                        status: 503,
                    }),
                }
            }
            Behaviour::Slow => {
                timer.sleep(latency(250, 450, &mut rng)).await;
                Ok(page())
            }
            Behaviour::Down => {
                timer.sleep(latency(5, 15, &mut rng)).await;
                Err(FetchError::Status {
                    host: host.name,
                    status: 503,
                })
            }
            Behaviour::Tarpit => {
                timer.sleep(Duration::MAX).await;
                Ok(page())
            }
            Behaviour::RateLimited(rate) => {
                timer.sleep(latency(20, 40, &mut rng)).await;
                if rng.chance(rate) {
                    Err(FetchError::TooManyRequests {
                        host: host.name,
                        retry_after: Duration::from_millis(120),
                    })
                } else {
                    Ok(page())
                }
            }
        }
    }
}

/// SplitMix64: small, seeded, good enough for a simulation.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

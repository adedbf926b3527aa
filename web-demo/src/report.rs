//! What a crawl reports, and its JSON form for the page.

use std::fmt::Write as _;
use std::time::Duration;

/// How one page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Fetched.
    Ok,
    /// Every attempt failed.
    Failed,
    /// An open circuit breaker refused the call without running it.
    Rejected,
    /// The crawl's budget ran out while the page was in flight.
    Cancelled,
}

impl Outcome {
    /// The outcome's name, as the page shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Rejected => "rejected",
            Outcome::Cancelled => "cancelled",
        }
    }
}

/// One page's result, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEvent {
    /// Time since the crawl started.
    pub at: Duration,
    /// The page's URL.
    pub url: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The error or the number of attempts, in words.
    pub detail: String,
}

/// Per-host counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostReport {
    /// The host name.
    pub host: String,
    /// Pages fetched.
    pub ok: u32,
    /// Pages not fetched (failed, rejected or cancelled).
    pub failed: u32,
    /// The host's circuit breaker state at the end ("-" without one).
    pub breaker: String,
}

/// A whole crawl's result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrawlReport {
    /// Which strategy ran.
    pub strategy: String,
    /// Pages fetched.
    pub ok: u32,
    /// Pages whose every attempt failed.
    pub failed: u32,
    /// Pages refused by an open breaker.
    pub rejected: u32,
    /// Pages cut off by the budget.
    pub cancelled: u32,
    /// Fetch attempts made in all.
    pub attempts: u32,
    /// How long the crawl took.
    pub elapsed: Duration,
    /// Per-host counts.
    pub hosts: Vec<HostReport>,
}

impl CrawlReport {
    /// Counts one page's outcome.
    pub fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Cancelled => self.cancelled += 1,
        }
    }

    /// The report as JSON, for the page.
    #[must_use]
    pub fn to_json(&self) -> String {
        let hosts: Vec<String> = self
            .hosts
            .iter()
            .map(|h| {
                format!(
                    r#"{{"host":{},"ok":{},"failed":{},"breaker":{}}}"#,
                    quote(&h.host),
                    h.ok,
                    h.failed,
                    quote(&h.breaker)
                )
            })
            .collect();
        format!(
            r#"{{"strategy":{},"ok":{},"failed":{},"rejected":{},"cancelled":{},"attempts":{},"elapsed_ms":{},"hosts":[{}]}}"#,
            quote(&self.strategy),
            self.ok,
            self.failed,
            self.rejected,
            self.cancelled,
            self.attempts,
            self.elapsed.as_millis(),
            hosts.join(",")
        )
    }
}

impl PageEvent {
    /// The event as JSON, for the page.
    #[must_use]
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"at_ms":{},"url":{},"outcome":{},"detail":{}}}"#,
            self.at.as_millis(),
            quote(&self.url),
            quote(self.outcome.as_str()),
            quote(&self.detail)
        )
    }
}

/// `text` as a JSON string literal.
#[must_use]
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_quotes_backslashes_and_control_characters() {
        assert_eq!(quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn a_report_serialises_every_field() {
        let mut r = CrawlReport {
            strategy: "staunch".into(),
            ..CrawlReport::default()
        };
        r.count(Outcome::Ok);
        r.count(Outcome::Rejected);
        r.hosts.push(HostReport {
            host: "a".into(),
            ok: 1,
            failed: 1,
            breaker: "open".into(),
        });
        assert_eq!(
            r.to_json(),
            r#"{"strategy":"staunch","ok":1,"failed":0,"rejected":1,"cancelled":0,"attempts":0,"elapsed_ms":0,"hosts":[{"host":"a","ok":1,"failed":1,"breaker":"open"}]}"#
        );
    }
}

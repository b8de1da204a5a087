//! Instants written as RFC 3339 text (GitHub's `published_at`, the ledger's copies of it). Compared as
//! instants, never as text: `2026-11-22T12:00:00+05:00` is earlier than `2026-11-22T08:00:00Z`, and
//! `…10:00:00.500Z` is later than `…10:00:00Z`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An instant, held in UTC so that equal instants are equal values.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl FromStr for Timestamp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
            .map_err(|e| format!("{text:?} is not an RFC 3339 date and time ({e})"))
    }
}

/// RFC 3339 in UTC (`Z`), fractional seconds only when there are any.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.format(&Rfc3339) {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{:?}", self.0),
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Timestamp {
    /// The instant `seconds` after the Unix epoch (as AWS APIs send times in JSON), if it is one.
    pub fn from_epoch_seconds(seconds: f64) -> Option<Timestamp> {
        OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128)
            .ok()
            .map(Timestamp)
    }

    /// As the ledger writes times: RFC 3339 UTC, whole seconds.
    pub fn whole_seconds(self) -> String {
        self.0
            .replace_nanosecond(0)
            .map(|t| Timestamp(t).to_string())
            .unwrap_or_else(|_| self.to_string())
    }
}

/// Now, as the ledger writes times: RFC 3339 UTC, whole seconds.
pub fn now() -> String {
    time_text(std::time::SystemTime::now())
}

/// `at` as the ledger writes times: RFC 3339, whole seconds, UTC.
pub fn time_text(at: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn offsets_and_fractions_compare_as_instants() {
        assert!(at("2026-11-22T12:00:00+05:00") < at("2026-11-22T08:00:00Z"));
        assert_eq!(at("2026-11-22T12:00:00+05:00"), at("2026-11-22T07:00:00Z"));
        assert!(at("2026-11-22T10:00:00.500Z") > at("2026-11-22T10:00:00Z"));
    }

    #[test]
    fn written_back_in_utc() {
        assert_eq!(
            at("2026-11-22T12:00:00+05:00").to_string(),
            "2026-11-22T07:00:00Z"
        );
        assert_eq!(
            at("2026-11-22T10:00:00.5Z").to_string(),
            "2026-11-22T10:00:00.5Z"
        );
    }

    #[test]
    fn garbage_is_refused() {
        for text in ["garbage", "", "2026-11-22", "2026-11-22 10:00:00"] {
            assert!(text.parse::<Timestamp>().is_err(), "{text:?}");
        }
    }
}

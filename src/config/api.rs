//! What the Stack Exchange API accepts, as the `[api]` table and an API
//! tag set's `sort` are checked against it: the config validates these,
//! and the API source builds its requests from the validated values.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where the API lives; tests point the crawler at a fake on 127.0.0.1.
pub const DEFAULT_API_BASE: &str = "https://api.stackexchange.com";

/// The API refuses a larger page with `bad_parameter`.
pub const MAX_PAGESIZE: u32 = 100;

/// The shortest pool-wide pause after a 502 `throttle_violation`. That error
/// means we already ignored a `backoff` or went too fast, so waiting only the
/// usual `backoff + 1` would risk a longer ban.
pub const THROTTLE_VIOLATION_MIN_PAUSE: Duration = Duration::from_secs(30);

/// How the API orders a tag's questions: the `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiSort {
    /// Newest first, as the "Newest" tab of a listing.
    #[default]
    Creation,
    Activity,
    Votes,
}

impl ApiSort {
    pub const ALL: [ApiSort; 3] = [ApiSort::Creation, ApiSort::Activity, ApiSort::Votes];

    /// The value of the `sort` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiSort::Creation => "creation",
            ApiSort::Activity => "activity",
            ApiSort::Votes => "votes",
        }
    }
}

impl fmt::Display for ApiSort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown API sort {0:?} (expected creation, activity or votes)")]
pub struct UnknownSort(pub String);

impl FromStr for ApiSort {
    type Err = UnknownSort;

    fn from_str(s: &str) -> Result<ApiSort, UnknownSort> {
        let s = s.trim();
        ApiSort::ALL
            .into_iter()
            .find(|sort| sort.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSort(s.to_owned()))
    }
}

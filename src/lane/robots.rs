//! robots.txt: fetched once per host before any page, and checked against
//! every planned URL. Stack Overflow answers unverified crawlers with
//! `Disallow: /` (sometimes with HTTP 418), so the check must say clearly
//! that the API is the compliant source rather than crawl regardless.

use texting_robots::Robot;
use thiserror::Error;

/// The product token matched against `User-agent:` lines.
pub const AGENT_TOKEN: &str = "stackcrawl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotsPolicy {
    /// No usable robots.txt (404 and the like): everything is allowed.
    AllowAll,
    /// The site's rules.
    Rules(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RobotsError {
    #[error(
        "robots.txt at {robots_url} forbids {url} to crawler `{AGENT_TOKEN}` ({forbidden} of {planned} planned pages); \
         nothing was fetched. For Stack Overflow use the Stack Exchange API source (source = \"api\"); \
         to crawl anyway (a mirror you run, explicit permission) set site.obey_robots = false"
    )]
    Disallowed {
        robots_url: String,
        url: String,
        forbidden: usize,
        planned: usize,
    },
    #[error(
        "robots.txt at {robots_url} could not be fetched ({reason}) and site.robots_unreachable = \"deny\"; nothing was fetched"
    )]
    Unreachable { robots_url: String, reason: String },
}

impl RobotsPolicy {
    /// How a robots.txt response is read: 2xx and 418 (the teapot Stack
    /// Overflow sends with its `Disallow: /`) carry rules; any other 4xx
    /// means there are none (RFC 9309 §2.3.1.3). A 429 never gets here:
    /// the caller retries it like a 5xx.
    pub fn from_response(status: u16, body: &str) -> RobotsPolicy {
        if (200..300).contains(&status) || status == 418 {
            RobotsPolicy::Rules(body.to_string())
        } else {
            RobotsPolicy::AllowAll
        }
    }

    /// The planned URLs the rules forbid.
    pub fn forbidden<S: AsRef<str>>(&self, urls: impl IntoIterator<Item = S>) -> Vec<S> {
        let RobotsPolicy::Rules(text) = self else {
            return Vec::new();
        };
        match Robot::new(AGENT_TOKEN, text.as_bytes()) {
            Ok(robot) => urls
                .into_iter()
                .filter(|u| !robot.allowed(u.as_ref()))
                .collect(),
            // Rules that cannot be read are not a permission.
            Err(_) => urls.into_iter().collect(),
        }
    }
}

pub fn robots_url(base_url: &str) -> String {
    match reqwest::Url::parse(base_url) {
        Ok(u) => format!("{}://{}/robots.txt", u.scheme(), u.authority()),
        Err(_) => format!("{base_url}/robots.txt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SO_2026: &str = "User-agent: *\nDisallow: /\n";

    #[test]
    fn stack_overflow_style_disallow_all_forbids_every_listing() {
        let p = RobotsPolicy::from_response(418, SO_2026);
        let urls =
            ["https://stackoverflow.com/questions/tagged/rust?tab=Newest&page=1&pagesize=50"];
        assert_eq!(p.forbidden(urls), urls);
    }

    #[test]
    fn rules_for_other_paths_allow_listings() {
        let p = RobotsPolicy::from_response(
            200,
            "User-agent: *\nDisallow: /users/\nDisallow: /search\n\nUser-agent: stackcrawl\nAllow: /questions/\n",
        );
        assert!(p
            .forbidden(["http://x/questions/tagged/c%2B%2B?tab=Newest&page=2&pagesize=50"])
            .is_empty());
    }

    #[test]
    fn a_group_for_our_agent_wins_over_the_wildcard() {
        let p = RobotsPolicy::from_response(
            200,
            "User-agent: *\nAllow: /\n\nUser-agent: stackcrawl\nDisallow: /questions/tagged/\n",
        );
        assert_eq!(p.forbidden(["http://x/questions/tagged/a?page=1"]).len(), 1);
    }

    #[test]
    fn missing_robots_allows_everything() {
        assert_eq!(
            RobotsPolicy::from_response(404, "not found"),
            RobotsPolicy::AllowAll
        );
        assert!(RobotsPolicy::AllowAll
            .forbidden(["http://x/questions/tagged/a"])
            .is_empty());
    }

    #[test]
    fn robots_url_is_at_the_host_root() {
        assert_eq!(
            robots_url("http://127.0.0.1:8080/mirror"),
            "http://127.0.0.1:8080/robots.txt"
        );
        assert_eq!(
            robots_url("https://stackoverflow.com"),
            "https://stackoverflow.com/robots.txt"
        );
    }
}

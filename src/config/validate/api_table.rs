//! The `[api]` table and api tag sets: the API's site, key, quota and
//! paging, checked like every other key.

use super::*;

impl Validator<'_> {
    /// An api tag set's order and page size. `--tab` is for listings and
    /// leaves api tag sets alone; `--pagesize` applies, within the API's limit.
    pub(super) fn api_listing(
        &self,
        prefix: &str,
        raw: &RawTagSet,
        ov: &Overrides,
    ) -> Result<(Order, i64), ConfigError> {
        if let Some(t) = &raw.tab {
            return Err(self.err(
                &format!("{prefix}.tab"),
                Some(t.span().start),
                "tab is for html tag sets; an api tag set orders by sort = \"creation\", \"activity\" or \"votes\"",
            ));
        }
        let sort = match &raw.sort {
            None => ApiSort::default(),
            Some(s) => s.get_ref().parse::<ApiSort>().map_err(|e| {
                self.err(
                    &format!("{prefix}.sort"),
                    Some(s.span().start),
                    e.to_string(),
                )
            })?,
        };
        let pagesize = self.int(
            &format!("{prefix}.pagesize"),
            "--pagesize",
            ov.pagesize,
            &raw.pagesize,
            DEFAULT_API_PAGESIZE,
            1..=api::MAX_PAGESIZE as i64,
        )?;
        Ok((Order::Api(sort), pagesize))
    }

    /// `[api]`, with the caller's app key. The site name is needed
    /// (and checked) only when a tag set uses the API.
    pub(super) fn api(
        &self,
        raw: &RawApi,
        host: &str,
        key: Option<&str>,
        uses_api: bool,
    ) -> Result<ApiSettings, ConfigError> {
        let base_url = match &raw.base_url {
            Some(u) => self.base_url("api.base_url", u.get_ref(), Some(u.span().start))?,
            None => api::DEFAULT_API_BASE.to_string(),
        };
        let api_host = host_of(&base_url).unwrap_or_default();
        let derived = api_site_for_host(host);
        let site = match &raw.site {
            Some(s) => {
                let at = Some(s.span().start);
                let name = check_api_site(s.get_ref()).map_err(|r| self.err("api.site", at, r))?;
                // One config crawls one site: records are labelled with the
                // host of site.base_url, so the API must fetch that same site.
                if let Some(d) = derived.as_ref().filter(|d| **d != name && name != host) {
                    return Err(self.err(
                        "api.site",
                        at,
                        format!(
                            "`{name}` is not the site of site.base_url ({host}, API name `{d}`); set site.base_url to the site you want"
                        ),
                    ));
                }
                Some(name)
            }
            None => derived,
        };
        if uses_api && site.is_none() {
            return Err(self.err(
                "api.site",
                None,
                format!(
                    "missing: `{host}` is not a Stack Exchange host, so the API site cannot be derived from site.base_url; set it, e.g. site = \"stackoverflow\""
                ),
            ));
        }
        let key = match key.map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            // The value is never quoted back: it may be a real key, pasted wrong.
            Some(k) if k.len() > 200 || !k.chars().all(|c| c.is_ascii_graphic()) => {
                return Err(self.err(
                    API_KEY_ENV,
                    None,
                    "is not an app key: expected up to 200 printable ASCII characters without spaces",
                ))
            }
            Some(k) => Some(ApiKey(k.to_string())),
        };
        let default_quota = if key.is_some() {
            API_QUOTA_WITH_KEY
        } else {
            API_QUOTA_WITHOUT_KEY
        };
        let daily_quota = self.int(
            "api.daily_quota",
            "",
            None,
            &raw.daily_quota,
            default_quota,
            1..=10_000_000,
        )?;
        let stop_at = self.int(
            "api.stop_at_quota_remaining",
            "",
            None,
            &raw.stop_at_quota_remaining,
            DEFAULT_STOP_AT_QUOTA_REMAINING,
            0..=10_000_000,
        )?;
        if stop_at >= daily_quota {
            return Err(self.err(
                "api.stop_at_quota_remaining",
                raw.stop_at_quota_remaining.as_ref().map(|s| s.span().start),
                format!("must be below api.daily_quota ({daily_quota}), got {stop_at}"),
            ));
        }
        let throttle_violation_pause = self.secs(
            "api.throttle_violation_pause_secs",
            &raw.throttle_violation_pause_secs,
            api::THROTTLE_VIOLATION_MIN_PAUSE.as_secs_f64(),
        )?;
        let filter = match &raw.filter {
            None => None,
            Some(f) => {
                let v = f.get_ref().trim();
                if v.is_empty() || v.len() > 100 || !v.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(self.err(
                        "api.filter",
                        Some(f.span().start),
                        "must be a filter id the API minted (e.g. \"!9_bDDxJY5\"), or left out",
                    ));
                }
                Some(v.to_string())
            }
        };
        Ok(ApiSettings {
            base_url,
            host: api_host,
            site,
            key,
            filter,
            daily_quota: daily_quota as u64,
            stop_at_quota_remaining: stop_at as u64,
            throttle_violation_pause,
        })
    }
}

/// The API's short name for a Stack Exchange host (the API also accepts the
/// full domain, used where the short form is not certain). `None` for hosts
/// that are not Stack Exchange sites: a mirror or a test server.
pub fn api_site_for_host(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    const DOT_COM: [&str; 5] = [
        "stackoverflow.com",
        "serverfault.com",
        "superuser.com",
        "askubuntu.com",
        "stackapps.com",
    ];
    if let Some(sub) = host.strip_suffix(".stackexchange.com") {
        // `unix.stackexchange.com` is `unix`; a nested meta is named by domain.
        return Some(if sub.contains('.') {
            host.to_string()
        } else {
            sub.to_string()
        });
    }
    if DOT_COM
        .iter()
        .any(|d| host == *d || host.ends_with(&format!(".{d}")))
    {
        // `meta.stackoverflow.com` is `meta.stackoverflow`, `pt.stackoverflow.com` is `pt.stackoverflow`.
        return host.strip_suffix(".com").map(str::to_string);
    }
    if host == "mathoverflow.net" || host.ends_with(".mathoverflow.net") {
        return Some(host.to_string());
    }
    None
}

/// An API site name: a short name (`stackoverflow`, `unix`, `meta.serverfault`)
/// or a domain (`mathoverflow.net`). It goes into a query string, so only
/// lower-case letters, digits, `.` and `-`.
fn check_api_site(name: &str) -> Result<String, String> {
    let n = name.trim().to_lowercase();
    if n.is_empty() || n.len() > 64 {
        return Err(
            "must be the API's name for a site, e.g. \"stackoverflow\" or \"serverfault\"".into(),
        );
    }
    let plausible = n
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && n.chars().any(|c| c.is_ascii_lowercase())
        && !n.starts_with(['.', '-'])
        && !n.ends_with(['.', '-'])
        && !n.contains("..");
    if !plausible {
        return Err(format!(
            "`{n}` is not an API site name: use letters, digits, `.` and `-`, e.g. \"stackoverflow\""
        ));
    }
    Ok(n)
}

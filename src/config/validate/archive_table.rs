//! The `[archive]` table and an archive tag set's query keys (`from`, `to`,
//! `collapse`, `crawl`): what `source = "wayback"` / `"commoncrawl"` read.

use super::super::archive::{
    check_crawl, parse_when, ArchiveQuery, ArchiveSettings, Collapse, RawArchive,
};
use super::super::raw::RawTagSet;
use super::{ConfigError, Source, Validator};

impl Validator<'_> {
    pub(super) fn archive(&self, raw: &RawArchive) -> Result<ArchiveSettings, ConfigError> {
        let d = ArchiveSettings::default();
        let url = |key: &str, v: &Option<toml::Spanned<String>>, default: String| match v {
            Some(u) => self.base_url(key, u.get_ref(), Some(u.span().start)),
            None => Ok(default),
        };
        let rate = match &raw.rate {
            Some(r) => self.rate("archive.rate", *r.get_ref(), Some(r.span().start))?,
            None => d.rate,
        };
        let rows = self.int(
            "archive.index_page_rows",
            "archive.index_page_rows",
            None,
            &raw.index_page_rows,
            i64::from(d.index_page_rows),
            1..=150_000,
        )?;
        Ok(ArchiveSettings {
            wayback_url: url("archive.wayback_url", &raw.wayback_url, d.wayback_url)?,
            commoncrawl_index_url: url(
                "archive.commoncrawl_index_url",
                &raw.commoncrawl_index_url,
                d.commoncrawl_index_url,
            )?,
            commoncrawl_data_url: url(
                "archive.commoncrawl_data_url",
                &raw.commoncrawl_data_url,
                d.commoncrawl_data_url,
            )?,
            rate,
            index_page_rows: rows as u32,
        })
    }

    /// An archive tag set's query; any of its keys on another tag set is
    /// refused, as `sort` is on an html one.
    pub(super) fn archive_query(
        &self,
        prefix: &str,
        source: Source,
        raw: &RawTagSet,
    ) -> Result<Option<ArchiveQuery>, ConfigError> {
        let is_archive = matches!(source, Source::Wayback | Source::CommonCrawl);
        let strays = [
            ("from", raw.from.as_ref().map(|s| s.span().start)),
            ("to", raw.to.as_ref().map(|s| s.span().start)),
            ("collapse", raw.collapse.as_ref().map(|s| s.span().start)),
            ("crawl", raw.crawl.as_ref().map(|s| s.span().start)),
        ];
        if !is_archive {
            if let Some((key, at)) = strays.iter().find(|(_, at)| at.is_some()) {
                return Err(self.err(
                    &format!("{prefix}.{key}"),
                    *at,
                    format!("{key} is for source = \"wayback\" or \"commoncrawl\" tag sets"),
                ));
            }
            return Ok(None);
        }
        if let Some(s) = raw.sort.as_ref() {
            return Err(self.err(
                &format!("{prefix}.sort"),
                Some(s.span().start),
                "sort is for source = \"api\" tag sets; an archive tag set lists captures oldest first",
            ));
        }
        let when = |key: &str, v: &Option<toml::Spanned<String>>| {
            v.as_ref()
                .map(|s| {
                    parse_when(s.get_ref())
                        .map_err(|r| self.err(&format!("{prefix}.{key}"), Some(s.span().start), r))
                })
                .transpose()
        };
        let (from, to) = (when("from", &raw.from)?, when("to", &raw.to)?);
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                let at = raw.to.as_ref().map(|s| s.span().start);
                return Err(self.err(&format!("{prefix}.to"), at, "is before `from`"));
            }
        }
        let collapse = raw
            .collapse
            .as_ref()
            .map(|c| {
                Collapse::parse(c.get_ref())
                    .map_err(|r| self.err(&format!("{prefix}.collapse"), Some(c.span().start), r))
            })
            .transpose()?;
        let key = format!("{prefix}.crawl");
        let crawls = match (&raw.crawl, source) {
            (Some(c), Source::CommonCrawl) => {
                let at = Some(c.span().start);
                let ids = c.get_ref().ids();
                if ids.is_empty() {
                    return Err(self.err(&key, at, "the crawl list is empty"));
                }
                ids.into_iter()
                    .map(|id| check_crawl(id).map_err(|r| self.err(&key, at, r)))
                    .collect::<Result<Vec<_>, _>>()?
            }
            (None, Source::CommonCrawl) => return Err(self.err(
                &key,
                None,
                "missing: a commoncrawl tag set names its crawl, like crawl = \"CC-MAIN-2019-13\"",
            )),
            (Some(c), _) => {
                return Err(self.err(
                    &key,
                    Some(c.span().start),
                    "crawl is for source = \"commoncrawl\" tag sets",
                ))
            }
            (None, _) => Vec::new(),
        };
        Ok(Some(ArchiveQuery {
            from,
            to,
            collapse,
            crawls,
        }))
    }
}

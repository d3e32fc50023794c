//! `parse`: saved pages and WARC files read into records.

use std::io::Write;

use tracing::{error, info, warn};

use chrono::{DateTime, Utc};
use stackcrawl::model::{PageContext, Question};

use super::import::Importer;
use super::stdout::Stdout;
use crate::{Failure, ParseArgs};

/// Where `parse` puts the records: standard output, or a store.
enum Records {
    Print(Stdout),
    Store(Importer),
}

impl Records {
    /// One page's records; `url` and `captured_at` say which capture it
    /// is (`None`: a saved file, see `Importer::saved`).
    fn page(
        &mut self,
        capture: Option<(&str, DateTime<Utc>)>,
        path: &std::path::Path,
        ctx: &PageContext,
        questions: &[Question],
    ) -> Result<(), Failure> {
        match (self, capture) {
            (Records::Print(out), _) => {
                for q in questions {
                    let line = parsed_record(q);
                    writeln!(out, "{line}").map_err(Stdout::failure)?;
                }
                Ok(())
            }
            (Records::Store(store), Some((url, at))) => store.capture(url, ctx, at, questions),
            (Records::Store(store), None) => store.saved(path, ctx, questions),
        }
    }

    fn finish(self) -> Result<(), Failure> {
        match self {
            Records::Print(out) => out.finish(),
            Records::Store(store) => store.finish(),
        }
    }
}

/// A saved page's record: a saved file does not say which tab or page it
/// was, nor (without --tag) which tag, so those are null rather than made
/// up; a crawl's records always have them.
fn parsed_record(q: &stackcrawl::model::Question) -> String {
    let mut v = serde_json::to_value(q).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        for (key, unknown) in [
            ("tag", q.tag.is_empty()),
            ("tab", q.tab.is_empty()),
            ("page", q.page == 0),
        ] {
            if unknown {
                obj.insert(key.into(), serde_json::Value::Null);
            }
        }
    }
    v.to_string()
}

/// Parses each file on its own: one bad file is reported and the others
/// still print. Exit 1 if any file is not a listing page.
pub fn parse_files(args: ParseArgs, progress: bool) -> Result<(), Failure> {
    let site = reqwest::Url::parse(&args.base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--base-url `{}` is not a URL with a host",
                args.base_url
            ))
        })?;
    let mut records = match &args.store {
        Some(store) => Records::Store(Importer::open(store, &args.tag_set)?),
        None => Records::Print(Stdout::new()),
    };
    let mut failed = 0;
    let ctx = stackcrawl::model::PageContext {
        site,
        base_url: args.base_url.trim_end_matches('/').to_string(),
        tag: args.tag.clone(),
        tab: String::new(),
        page: 0,
    };
    let workers = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    // Bars only for many files, where a person watches a terminal.
    let bar = (progress && args.files.len() > 1).then(|| {
        let bar = indicatif::ProgressBar::new(args.files.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files  {per_sec}  ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let log = |f: &dyn Fn()| match &bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    };
    stackcrawl::source::saved::read_files(&args.files, &ctx, workers, |item| {
        use stackcrawl::source::saved::Item;
        let file = match item {
            Item::Saved(file) => file,
            // A web archive's pages: one log line per file, not per page.
            Item::Archived(path, page) => {
                let listing = match page.read {
                    Ok(listing) => listing,
                    Err(e) => {
                        let path = path.display();
                        log(&|| warn!("{path}: {} captured {}: {e}", page.uri, page.captured_at));
                        return Ok(());
                    }
                };
                // The URL names the page (site, tag, tab, page): it was
                // wanted for it.
                let Some(page_ctx) = stackcrawl::source::archive::listing_context(&page.uri) else {
                    return Ok(());
                };
                let capture = Some((page.uri.as_str(), page.captured_at));
                return records.page(capture, path, &page_ctx, &listing.questions);
            }
            Item::ArchiveEnd(path, counts) => {
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                let path = path.display();
                match counts {
                    // As a saved page's drift is: the layout may have changed.
                    Ok(c) if c.drifted > 0 => log(&|| error!("{path}: WARC file: {c}")),
                    Ok(c) if c.broken_records + c.broken_members > 0 => {
                        log(&|| warn!("{path}: WARC file: {c}"))
                    }
                    Ok(c) => log(&|| info!("{path}: WARC file: {c}")),
                    Err(e) => {
                        log(&|| error!("{path}: {e}"));
                        failed += 1;
                    }
                }
                return Ok(());
            }
        };
        if let Some(bar) = &bar {
            bar.inc(1);
        }
        let path = file.path.display();
        let cleaned = match file.read {
            Ok(listing) => listing,
            Err(e) => {
                log(&|| error!("{path}: {e}"));
                failed += 1;
                return Ok::<(), Failure>(());
            }
        };
        log(&|| {
            if let Some(drift) = &cleaned.layout_drift {
                error!("{path}: {drift}");
            }
            info!(
                "{path}: layout {}, {} questions, {} rejected",
                cleaned.layout,
                cleaned.questions.len(),
                cleaned.rejections.len()
            );
            for r in &cleaned.rejections {
                warn!(
                    "{path}: rejected summary {}: {}",
                    r.question_id.as_deref().unwrap_or("(no id)"),
                    r.reason
                );
            }
        });
        records.page(None, file.path, &ctx, &cleaned.questions)
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    records.finish()?;
    if failed > 0 {
        return Err(Failure::Failed(format!(
            "{failed} of {} files were not read as listing pages",
            args.files.len()
        )));
    }
    Ok(())
}

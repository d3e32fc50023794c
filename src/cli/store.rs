//! `report` and `export`: a store read, never written.

use std::io::Write;

use tracing::info;

use stackcrawl::config::{Config, Environment, Overrides};
use stackcrawl::store::{self, ExportFormat, PassStore, StoreLocation};

use super::stdout::Stdout;
use crate::{ExportArgs, ExportKind, Failure, StoreArgs, StoreSource};

fn store_location(source: &StoreSource, env: &Environment) -> Result<StoreLocation, String> {
    match (&source.config, &source.store) {
        (_, Some(store)) => StoreLocation::parse(store).map_err(|e| format!("--store: {e}")),
        (Some(c), None) => Config::load(c, &Overrides::default(), env)
            .map(|c| c.store)
            .map_err(|e| e.to_string()),
        (None, None) => Err("give --config FILE or --store STORE".into()),
    }
}

fn open_store(source: &StoreSource, env: &Environment) -> Result<Box<dyn PassStore>, Failure> {
    let location = store_location(source, env).map_err(Failure::Usage)?;
    if let Some(path) = location.sqlite_path().filter(|p| !p.exists()) {
        return Err(Failure::Usage(format!("no store at {}", path.display())));
    }
    store::open_read_only(&location).map_err(|e| Failure::Failed(e.to_string()))
}

pub fn report(args: StoreArgs, env: &Environment) -> Result<(), Failure> {
    let store = open_store(&args.source, env)?;
    let report = store
        .report(args.top)
        .map_err(|e| Failure::Failed(e.to_string()))?;
    if let Some(path) = &args.html {
        let history = store
            .history(args.top)
            .map_err(|e| Failure::Failed(e.to_string()))?;
        let page = stackcrawl::observe::html_report::render(&report, &history, chrono::Utc::now());
        std::fs::write(path, page)
            .map_err(|e| Failure::Failed(format!("cannot write {}: {e}", path.display())))?;
        info!(html = %path.display(), "report written with charts");
    }
    let mut out = Stdout::new();
    if args.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Failed(e.to_string()))?;
        writeln!(out, "{text}").map_err(Stdout::failure)?;
        return out.finish();
    }
    for t in &report.tags {
        writeln!(
            out,
            "{:<24} {:>7} questions  {:>12} views  {:>8} votes  {:>7} answers  {:>5.1}% unanswered",
            t.tag,
            t.questions,
            t.views,
            t.votes,
            t.answers,
            t.unanswered_share * 100.0
        )
        .map_err(Stdout::failure)?;
        let co: Vec<String> = t
            .co_tags
            .iter()
            .map(|c| format!("{} ({})", c.tag, c.questions))
            .collect();
        if !co.is_empty() {
            writeln!(out, "    with: {}", co.join(", ")).map_err(Stdout::failure)?;
        }
    }
    if !report.growth.is_empty() {
        writeln!(out, "fastest-growing since the previous pass:").map_err(Stdout::failure)?;
        for g in &report.growth {
            writeln!(
                out,
                "  +{:<8} views  +{} votes  {}  {}",
                g.views_gained, g.votes_gained, g.title, g.url
            )
            .map_err(Stdout::failure)?;
        }
    }
    out.finish()
}

pub fn export(args: ExportArgs, env: &Environment) -> Result<(), Failure> {
    let store = open_store(&args.source, env)?;
    let format = match args.format {
        ExportKind::Jsonl => ExportFormat::Jsonl,
        ExportKind::Csv => ExportFormat::Csv,
        ExportKind::Parquet => ExportFormat::Parquet,
    };
    // Parquet is binary: on a terminal it would only garble the screen.
    if format == ExportFormat::Parquet
        && args.output.is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(Failure::Usage(
            "--format parquet writes a binary file: give --output FILE or redirect \
             standard output"
                .into(),
        ));
    }
    let result = match &args.output {
        Some(path) => std::fs::File::create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))
            .and_then(|f| {
                store
                    .export(&mut std::io::BufWriter::new(f), format, args.history)
                    .map_err(|e| e.to_string())
            }),
        None => {
            let mut out = Stdout::new();
            // A failed write reaches here as the store's error; the writer
            // kept what it was.
            let rows = store.export(&mut out, format, args.history).map_err(|e| {
                out.error
                    .take()
                    .map_or(Failure::Failed(e.to_string()), Stdout::failure)
            })?;
            out.finish()?;
            Ok(rows)
        }
    };
    let rows = result.map_err(Failure::Failed)?;
    info!("exported {rows} rows");
    Ok(())
}

//! The `stackcrawl` command: parses flags, sets up logging, turns SIGINT and
//! SIGTERM into a shutdown future, runs the job on an actix System, and maps
//! the outcome to an exit code (0 ok, 1 the run failed, 2 bad usage/config).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::error;
use tracing_subscriber::EnvFilter;

use stackcrawl::config::{Config, ConfigError, Overrides};
use stackcrawl::plan::Plan;
use stackcrawl::{CrawlError, Sink};

#[derive(Parser)]
#[command(
    name = "stackcrawl",
    version,
    about = "Polite crawler for Stack Overflow / Stack Exchange tag listings"
)]
struct Cli {
    /// Log format: human-readable, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// One pass over the configured tags, then exit.
    Crawl(CrawlArgs),
}

#[derive(Args)]
struct CrawlArgs {
    /// TOML config (see config/example.toml). Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Crawl another Stack Exchange site or a mirror.
    #[arg(long)]
    base_url: Option<String>,
    /// Output file: .jsonl or .csv.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print every URL that would be fetched and fetch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Fetch only the pages listed in a failures file from an earlier run,
    /// adding their records to the output.
    #[arg(long, value_name = "FILE")]
    retry_failed: Option<PathBuf>,
    /// A tag to crawl (repeatable); replaces the config's tag sets.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Listing tab: Newest, Active, Bountied, Unanswered, Frequent, Votes.
    #[arg(long)]
    tab: Option<String>,
    /// Pages per tag.
    #[arg(long)]
    pages: Option<i64>,
    /// Questions per page: 15, 30 or 50.
    #[arg(long)]
    pagesize: Option<i64>,
    /// Number of fetcher actors.
    #[arg(long)]
    fetchers: Option<i64>,
    /// Requests per second for the whole process (at most 30).
    #[arg(long)]
    rate: Option<f64>,
    /// Requests allowed back to back before the rate applies.
    #[arg(long)]
    burst: Option<i64>,
}

impl CrawlArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            base_url: self.base_url.clone(),
            output: self.output.clone(),
            tags: self.tags.clone(),
            tab: self.tab.clone(),
            pages: self.pages,
            pagesize: self.pagesize,
            fetchers: self.fetchers,
            rate: self.rate,
            burst: self.burst,
        }
    }

    fn load(&self) -> Result<Config, ConfigError> {
        let ov = self.overrides();
        match &self.config {
            Some(path) => Config::load(path, &ov),
            None => Config::from_toml("", "command line", &ov),
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Resolves on the first SIGINT or SIGTERM; a second one exits at once.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
        actix_rt::spawn(async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
            error!("second signal: exiting at once");
            std::process::exit(1);
        });
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.log_format);
    match cli.command {
        Command::Crawl(args) => crawl(args),
    }
}

fn crawl(args: CrawlArgs) -> ExitCode {
    let config = match args.load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("stackcrawl: {e}");
            return ExitCode::from(2);
        }
    };
    let plan = match &args.retry_failed {
        Some(path) => match Plan::from_failures(path, &config) {
            Ok(plan) => plan,
            Err(e) => {
                eprintln!("stackcrawl: --retry-failed: {e}");
                return ExitCode::from(2);
            }
        },
        None => Plan::from_config(&config),
    };
    if args.dry_run {
        for job in &plan.jobs {
            println!("{}", job.url);
        }
        eprintln!(
            "stackcrawl: dry run: {} pages planned at {} requests/s (burst {}), nothing fetched",
            plan.len(),
            config.rate,
            config.burst
        );
        return ExitCode::SUCCESS;
    }
    // A retry run adds to the records the first run wrote.
    let sink = if args.retry_failed.is_some() {
        Sink::append(&config.output, config.output_format)
    } else {
        Sink::create(&config.output, config.output_format)
    };
    let sink = match sink {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stackcrawl: {e}");
            return ExitCode::from(1);
        }
    };
    let result =
        actix_rt::System::new().block_on(stackcrawl::crawl(config, plan, sink, shutdown_signal()));
    match result {
        Ok(s) if s.pages_failed == 0 && s.budget_resets_at.is_none() => ExitCode::SUCCESS,
        Ok(s) => {
            error!(
                pages_failed = s.pages_failed,
                budget_exhausted = s.budget_resets_at.is_some(),
                "run incomplete"
            );
            ExitCode::from(1)
        }
        Err(CrawlError::Robots(e)) => {
            eprintln!("stackcrawl: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            error!(error = %e, "run failed");
            ExitCode::from(1)
        }
    }
}

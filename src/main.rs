//! The `stackcrawl` command: parses flags, sets up logging, turns SIGINT and
//! SIGTERM into a shutdown future, runs the job on an actix System, and maps
//! the outcome to an exit code (0 ok, 1 the run failed, 2 bad usage/config,
//! 3 a crawl interrupted by a signal, resumable).

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::{error, info, warn};
use tracing_subscriber::EnvFilter;

use stackcrawl::config::{Config, ConfigError, Environment, Overrides, API_KEY_ENV};
use stackcrawl::engine::plan::Plan;
use stackcrawl::lane::robots::RobotsError;
use stackcrawl::observe::monitor::Monitor;
use stackcrawl::observe::progress::{LogWriter, Progress};
use stackcrawl::observe::status::StatusServer;
use stackcrawl::store::{self, StoreLocation};
use stackcrawl::{CrawlError, Sink};

mod cli;
use cli::stdout::Stdout;

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
    /// No progress display on a terminal (the log is unchanged).
    #[arg(long, short, global = true)]
    quiet: bool,
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
    /// Keep the store current: repeat each tag set on its interval until
    /// SIGINT/SIGTERM (SIGHUP re-reads the config).
    Run(RunArgs),
    /// Per-tag totals, fastest-growing questions and co-occurring tags.
    Report(StoreArgs),
    /// Write the store's questions (or their history) as JSONL or CSV.
    Export(ExportArgs),
    /// Parse saved listing pages (an archive, a page saved from a browser),
    /// saved API 2.x responses or WARC files, told apart by content, and
    /// print their records as JSONL.
    Parse(ParseArgs),
    /// Print a shell completion script, e.g.
    /// `stackcrawl completions bash > ~/.local/share/bash-completion/completions/stackcrawl`.
    Completions(CompletionsArgs),
}

#[derive(Args)]
struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args)]
struct ParseArgs {
    /// Saved listing pages, API responses or WARC files (plain or gzipped).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The site the pages came from: makes question URLs absolute.
    #[arg(long, default_value = stackcrawl::config::DEFAULT_BASE_URL)]
    base_url: String,
    /// The tag the pages list, recorded in each record's `tag`.
    #[arg(long, default_value = "")]
    tag: String,
    /// Files read at once (default: one per core). Records come out in the
    /// files' order whatever this is.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Write the pages into this store (SQLite file or postgres:// URL) as
    /// snapshots at their capture time (a WARC record's WARC-Date, a saved
    /// file's modification time) instead of printing them: one import is
    /// one pass, and a capture already stored adds nothing.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    /// The tag set an import's pass is recorded under (with --store).
    #[arg(long, value_name = "NAME", default_value = stackcrawl::store::IMPORT_TAG_SET, requires = "store")]
    tag_set: String,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// TOML config (see config/example.toml). Flags override it, at start
    /// and at every reload.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    site: SiteArgs,
    #[command(flatten)]
    status: StatusArgs,
    /// This process's name in logs, status lines and the store (overrides
    /// [fleet] name; default HOST:PID).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Send requests from this local address (overrides [fleet]
    /// local_address): one egress IP per process of a fleet.
    #[arg(long, value_name = "IP")]
    local_address: Option<std::net::IpAddr>,
}

impl RunArgs {
    /// The fleet flags win over the file, at start and at every reload.
    fn apply(&self, mut config: Config) -> Config {
        if let Some(name) = &self.name {
            config.fleet.name = name.clone();
        }
        if self.local_address.is_some() {
            config.fleet.local_address = self.local_address;
        }
        config
    }
}

#[derive(Args, Clone)]
struct StatusArgs {
    /// Serve a live status page (/), /status.json and Prometheus /metrics
    /// on HOST:PORT while working (config: [status] addr). Loopback only,
    /// unless the config sets [status] allow_remote = true.
    #[arg(long, value_name = "HOST:PORT")]
    status_addr: Option<String>,
}

/// Where `report` and `export` read: a config's store, or a store named.
#[derive(Args)]
struct StoreSource {
    /// Take the store from this config's [store] path.
    #[arg(long, conflicts_with = "store")]
    config: Option<PathBuf>,
    /// The store to read: a SQLite file (PATH or sqlite:PATH) or a
    /// PostgreSQL URL (postgres://…).
    #[arg(long, alias = "db", value_name = "STORE")]
    store: Option<String>,
}

#[derive(Args)]
struct StoreArgs {
    #[command(flatten)]
    source: StoreSource,
    /// How many growing questions and co-occurring tags to list.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the report, with charts, as one self-contained HTML file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    source: StoreSource,
    /// Row format: one JSON object a line, CSV with a header, or Parquet
    /// (typed columns; to --output or a redirected standard output).
    #[arg(long, value_enum, default_value_t = ExportKind::Jsonl)]
    format: ExportKind,
    /// One row per snapshot instead of the latest state.
    #[arg(long)]
    history: bool,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportKind {
    Jsonl,
    Csv,
    Parquet,
}

#[derive(Args)]
struct CrawlArgs {
    /// TOML config (see config/example.toml). Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output file: .jsonl, .csv or .parquet.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Print every URL that would be fetched and fetch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Fetch only the pages listed in a failures file from an earlier run,
    /// adding their records to the output. The file says which pages, so
    /// --tag, --tab, --pages and --pagesize are refused with it.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["tags", "tab", "pages", "pagesize"]
    )]
    retry_failed: Option<PathBuf>,
    /// Also keep the records, with a snapshot of their figures, in this
    /// store (what `run` uses): a SQLite file (PATH or sqlite:PATH) or a
    /// PostgreSQL URL; an interrupted crawl resumes there.
    #[arg(long, value_name = "STORE")]
    store: Option<String>,
    #[command(flatten)]
    site: SiteArgs,
    #[command(flatten)]
    status: StatusArgs,
}

/// What `crawl` and `run` alike take from flags over the config: where,
/// which tags, how fast.
#[derive(Args, Clone)]
struct SiteArgs {
    /// Crawl another Stack Exchange site or a mirror.
    #[arg(long)]
    base_url: Option<String>,
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

impl SiteArgs {
    fn overrides(&self, status: &StatusArgs) -> Overrides {
        Overrides {
            base_url: self.base_url.clone(),
            tags: self.tags.clone(),
            tab: self.tab.clone(),
            pages: self.pages,
            pagesize: self.pagesize,
            fetchers: self.fetchers,
            rate: self.rate,
            burst: self.burst,
            status_addr: status.status_addr.clone(),
            ..Overrides::default()
        }
    }
}

impl CrawlArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            output: self.output.clone(),
            pages_from_file: self.retry_failed.is_some(),
            ..self.site.overrides(&self.status)
        }
    }

    fn load(&self, env: &Environment) -> Result<Config, ConfigError> {
        let ov = self.overrides();
        match &self.config {
            Some(path) => Config::load(path, &ov, env),
            None => Config::from_toml_in("", "command line", &ov, env),
        }
    }
}

/// The one place the process environment is read for the config; the
/// config module reads none itself.
fn process_environment() -> Environment {
    Environment {
        api_key: std::env::var(API_KEY_ENV).ok(),
        state_dir: state_dir(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")),
    }
}

/// `$XDG_STATE_HOME`, else `~/.local/state`. A relative value is ignored,
/// as the XDG spec asks: it would put the per-user budget in whatever
/// directory the crawl happened to start from.
fn state_dir(xdg_state_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    xdg_state_home
        .and_then(absolute)
        .or_else(|| home.and_then(absolute).map(|h| h.join(".local/state")))
}

fn init_logging(format: LogFormat) {
    // Other crates' chatter (the status server's worker lines, the
    // PostgreSQL client's connection lines) only with RUST_LOG. The
    // server's NOTICEs are logged by the sync client as `postgres::config`,
    // which this does not quiet: the store sends nothing that draws one.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,tokio_postgres=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        // A log that cannot be written (standard error on a full disk, a
        // closed pipe) loses its lines, not the crawl: by default the
        // subscriber reports the failure with eprintln!, which panics on
        // the same standard error.
        .log_internal_errors(false)
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

/// SIGHUP's default action ends the process, and `run` can only turn it
/// into a config reload once its runtime is up, after the config is read
/// and the System started: a SIGHUP in those first milliseconds (a log
/// rotation, a supervisor's reload) would kill the service. So it is
/// ignored from the first instruction of `main`; the reload handler, once
/// registered, replaces the ignore. Other commands keep the default.
#[cfg(unix)]
fn ignore_sighup(ignore: bool) {
    let action = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
    // SAFETY: sets a disposition (ignore or default), no handler code runs;
    // it happens before any other thread exists.
    unsafe {
        libc::signal(libc::SIGHUP, action);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    ignore_sighup(true);
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
    #[cfg(unix)]
    if !matches!(cli.command, Command::Run(_)) {
        ignore_sighup(false);
    }
    init_logging(cli.log_format);
    let env = process_environment();
    // Bars only where a person watches and the log is for people.
    let progress = !cli.quiet
        && matches!(cli.log_format, LogFormat::Human)
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let outcome = match cli.command {
        Command::Crawl(args) => crawl(args, &env, progress),
        Command::Run(args) => run(args, env),
        Command::Report(args) => cli::store::report(args, &env),
        Command::Export(args) => cli::store::export(args, &env),
        Command::Parse(args) => cli::parse::parse_files(args, progress),
        Command::Completions(args) => {
            use clap::CommandFactory;
            // Generated into memory: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut Cli::command(), "stackcrawl", &mut script);
            let mut out = Stdout::new();
            out.write_all(&script)
                .map_err(Stdout::failure)
                .and_then(|()| out.finish())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.log();
            ExitCode::from(failure.code())
        }
    }
}

/// Why a command did not succeed. The one place an outcome becomes an exit
/// code: 0 success, 1 the run failed, 2 bad usage or config (robots.txt
/// forbidding the plan and a store in use are usage problems too), 3
/// interrupted and resumable.
#[derive(Debug)]
enum Failure {
    Usage(String),
    Failed(String),
    /// Standard output was closed by its reader (`| head`): it has what it
    /// wanted, so the command ends quietly with 0.
    StdoutClosed,
    Crawl(CrawlError),
    Interrupted {
        pages_failed: u64,
    },
    Incomplete {
        pages_failed: u64,
        budget_exhausted: bool,
    },
}

impl From<CrawlError> for Failure {
    fn from(e: CrawlError) -> Self {
        Failure::Crawl(e)
    }
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::StdoutClosed => 0,
            Failure::Usage(_) => 2,
            // An unreachable robots.txt is the site's failure, not usage.
            Failure::Crawl(
                CrawlError::Robots(RobotsError::Disallowed { .. }) | CrawlError::Locked(_),
            ) => 2,
            Failure::Interrupted { .. } => 3,
            // Stopped by a signal while the store did not answer: what was
            // not written is fetched again at the next start.
            Failure::Crawl(CrawlError::StoreNotAnswering {
                interrupted: true, ..
            }) => 3,
            Failure::Failed(_) | Failure::Crawl(_) | Failure::Incomplete { .. } => 1,
        }
    }

    /// Every line goes through the log, so `--log-format json` holds for
    /// failures too.
    fn log(&self) {
        match self {
            Failure::StdoutClosed => {}
            Failure::Usage(why) | Failure::Failed(why) => error!("{why}"),
            Failure::Crawl(CrawlError::Robots(e)) => error!("{e}"),
            Failure::Crawl(e @ CrawlError::Unreachable { .. }) => error!("{e}"),
            Failure::Crawl(e @ CrawlError::Locked(_)) => error!(error = %e, "store in use"),
            Failure::Crawl(e) => error!(error = %e, "run failed"),
            Failure::Interrupted { pages_failed } => error!(
                pages_failed,
                "crawl interrupted: the pages not fetched are in the failures file; --retry-failed completes the crawl"
            ),
            Failure::Incomplete {
                pages_failed,
                budget_exhausted,
            } => error!(pages_failed, budget_exhausted, "run incomplete"),
        }
    }
}

fn crawl(args: CrawlArgs, env: &Environment, progress: bool) -> Result<(), Failure> {
    let mut config = args.load(env).map_err(|e| Failure::Usage(e.to_string()))?;
    let plan = match &args.retry_failed {
        Some(path) => {
            let plan = Plan::from_failures(path, &config)
                .map_err(|e| Failure::Usage(format!("--retry-failed: {e}")))?;
            // The pages still missing after the retry replace the file it
            // consumed (removed when none are), wherever that file is: left
            // as it was, a second retry would append its records again.
            config.failures_path = path.clone();
            plan
        }
        None => Plan::from_config(&config),
    };
    if args.dry_run {
        warn_if_robots_refuses(&config, &plan);
        let mut out = Stdout::new();
        for job in plan.jobs() {
            writeln!(out, "{}", job.url).map_err(Stdout::failure)?;
        }
        out.finish()?;
        for (tag, order) in plan.index_lanes() {
            info!(
                tag = %tag,
                archive = order.as_str(),
                "dry run: this tag's captures are listed by the archive's index when the crawl starts; the index is not asked"
            );
        }
        info!(
            "dry run: {} pages planned at {} requests/s (burst {}), nothing fetched",
            plan.len(),
            config.rate,
            config.burst
        );
        return Ok(());
    }
    let store_location = args
        .store
        .as_deref()
        .map(StoreLocation::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--store: {e}")))?;
    stackcrawl::engine::crawl::check_written_paths(&config, true, store_location.as_ref())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    // A retry run adds to the records the first run wrote. The output's
    // directory is the user's to fix, like any bad path.
    let sink = if args.retry_failed.is_some() {
        Sink::append(&config.output, config.output_format)
    } else {
        Sink::create(&config.output, config.output_format)
    }
    .map_err(|e| Failure::Usage(e.to_string()))?;
    let store = store_location
        .as_ref()
        .map(store::open)
        .transpose()
        .map_err(|e| Failure::Failed(e.to_string()))?;
    let monitor =
        (progress || config.status_addr.is_some()).then(|| Monitor::new("crawl", config.rate));
    let s = actix_rt::System::new().block_on(async move {
        let server = serve_status(config.status_addr, &monitor)?;
        let bars = monitor.clone().filter(|_| progress).map(Progress::start);
        let summary =
            stackcrawl::crawl_watched(config, plan, sink, store, shutdown_signal(), monitor).await;
        if let Some(bars) = bars {
            bars.finish().await;
        }
        if let Some(server) = server {
            server.stop().await;
        }
        Ok::<_, Failure>(summary?)
    })?;
    if s.interrupted {
        Err(Failure::Interrupted {
            pages_failed: s.pages_failed,
        })
    } else if s.pages_failed > 0 || s.budget_resets_at.is_some() {
        Err(Failure::Incomplete {
            pages_failed: s.pages_failed,
            budget_exhausted: s.budget_resets_at.is_some(),
        })
    } else {
        Ok(())
    }
}

/// Starts the status server when an address is configured.
fn serve_status(
    addr: Option<std::net::SocketAddr>,
    monitor: &Option<Monitor>,
) -> Result<Option<StatusServer>, Failure> {
    let (Some(addr), Some(monitor)) = (addr, monitor) else {
        return Ok(None);
    };
    let server =
        StatusServer::start(addr, monitor.clone()).map_err(|e| Failure::Usage(e.to_string()))?;
    info!(
        url = %format!("http://{}/", server.addr),
        "status page, /status.json and /metrics served"
    );
    Ok(Some(server))
}

/// A dry run fetches nothing, robots.txt included, but the Stack Exchange
/// sites' robots.txt is known: `Disallow: /` for crawlers they have not
/// verified. So a dry run of HTML pages there says, before listing them,
/// that the crawl would stop at robots.txt, and what to use instead.
fn warn_if_robots_refuses(config: &Config, plan: &Plan) {
    let html_pages = plan.pages().filter(|p| p.source.obeys_robots()).count();
    if html_pages == 0 || !config.obey_robots {
        return;
    }
    let Some(api_site) = stackcrawl::config::api_site_for_host(&config.site) else {
        return;
    };
    warn!(
        site = %config.site,
        html_pages,
        "{site}'s robots.txt refuses crawlers it has not verified (Disallow: /): this crawl would stop before fetching any of these {html_pages} pages and exit 2. \
         Use the Stack Exchange API instead: source = \"api\" in the tag set, with [api] site = \"{api_site}\" (config/stackoverflow-api.toml is ready for Stack Overflow)",
        site = config.site,
    );
}

fn run(args: RunArgs, env: Environment) -> Result<(), Failure> {
    // The flags hold across SIGHUP reloads; the server stays where it is.
    let overrides = args.site.overrides(&args.status);
    let config =
        Config::load(&args.config, &overrides, &env).map_err(|e| Failure::Usage(e.to_string()))?;
    let config = args.apply(config);
    // `run` rewrites the output after each pass only when the config names
    // it; its directory must exist then, as for `crawl`.
    stackcrawl::engine::crawl::check_written_paths(
        &config,
        config.output_named,
        Some(&config.store),
    )
    .map_err(|e| Failure::Usage(e.to_string()))?;
    if config.output_named {
        Sink::create(&config.output, config.output_format)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    let monitor = config.status_addr.map(|_| Monitor::new("run", config.rate));
    actix_rt::System::new().block_on(async move {
        let server = serve_status(config.status_addr, &monitor)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        // The handler is in place before the run starts (and so before it
        // tells systemd it is ready): a reload right after start is heard.
        #[cfg(unix)]
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| Failure::Failed(format!("cannot handle SIGHUP: {e}")))?;
        actix_rt::spawn(reload_on_sighup(
            args,
            env,
            overrides,
            tx,
            #[cfg(unix)]
            hup,
        ));
        let totals =
            stackcrawl::engine::run::run_watched(config, rx, shutdown_signal(), monitor).await;
        if let Some(server) = server {
            server.stop().await;
        }
        totals.map_err(Failure::from)
    })?;
    Ok(())
}

/// Re-reads the config on every SIGHUP; only a valid one is passed on, so
/// a bad edit never replaces the running config.
async fn reload_on_sighup(
    args: RunArgs,
    env: Environment,
    overrides: Overrides,
    tx: tokio::sync::mpsc::UnboundedSender<Config>,
    #[cfg(unix)] mut hup: tokio::signal::unix::Signal,
) {
    let path = &args.config;
    #[cfg(unix)]
    while hup.recv().await.is_some() {
        match Config::load(path, &overrides, &env).map(|c| args.apply(c)) {
            Ok(c) => {
                tracing::info!(config = %path.display(), "SIGHUP: new config accepted");
                if tx.send(c).is_err() {
                    return;
                }
            }
            Err(e) => {
                error!(config = %path.display(), error = %e, "SIGHUP: config rejected; the running config stays")
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, env, overrides, tx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dir_is_xdg_state_home_else_under_home_and_never_relative() {
        let dir =
            |x: Option<&str>, h: Option<&str>| state_dir(x.map(Into::into), h.map(Into::into));
        assert_eq!(dir(Some("/xdg"), Some("/home/u")), Some("/xdg".into()));
        assert_eq!(
            dir(None, Some("/home/u")),
            Some("/home/u/.local/state".into())
        );
        assert_eq!(
            dir(Some("rel"), Some("/home/u")),
            Some("/home/u/.local/state".into())
        );
        assert_eq!(dir(Some("rel"), Some("rel")), None);
        assert_eq!(dir(None, None), None);
    }
}

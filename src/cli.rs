//! The local command line: the same connector logic with a file for credentials, a file for the
//! cursor and NDJSON output. Useful against a real tenant and against the local simulator.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tokio::time::Instant;

use crate::actions::{Connector, Outcome, Summary};
use crate::cursor::file::FileCursorStore;
use crate::cursor::CursorStore;
use crate::drain::{Formatted, Normalized, Ocsf, RecordFormat};
use crate::invocation::{Action, BackfillRequest, ConnectorId, Invocation};
use crate::normalize::{Exclusion, Normalizer};
use crate::okta::{ClientOptions, MAX_PAGE_LIMIT};
use crate::secrets::file::FileSecretSource;
use crate::secrets::SecretSource;
use crate::settings::RunSettings;
use crate::sink::file::FileSink;
use crate::sink::{EventSink, Record};

/// Moves Okta System Log events into Kinesis as TOTAL events; locally, into NDJSON files.
///
/// Exit codes: 0 done; 1 the run failed; 2 bad arguments; 3 the connector is paused (run
/// `okta-ingest resume`); 4 another live process holds the connector's lease.
#[derive(Parser)]
#[command(name = "okta-ingest", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drain what Okta has, write NDJSON, and save the cursor once the output is flushed.
    Poll {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        /// Tail mode: once caught up, keep the lease and poll again every N seconds (1-300)
        /// until the budget ends, checkpointing each page.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=300))]
        tail_interval_secs: Option<u64>,
    },
    /// Pull a historical window (default 90 days) through its own cursor item.
    Backfill {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        output: Output,
        /// Days back from now (1-90).
        #[arg(long)]
        days: Option<u32>,
        /// Read the window again even if an earlier backfill already delivered it.
        #[arg(long)]
        restart: bool,
    },
    /// Check the credentials and count the events of the last 24 hours.
    TestConnection {
        #[command(flatten)]
        common: Common,
    },
    /// Pause the connector of a state file: polls and backfills do nothing until `resume`.
    Disable {
        /// Cursor file of the connector.
        #[arg(long)]
        state: PathBuf,
        /// Why, recorded in the state file.
        #[arg(long, default_value = "disabled by an operator")]
        reason: String,
    },
    /// Clear a pause (the operator's, or the connector's own after failures) and the failure count.
    Resume {
        /// Cursor file of the connector.
        #[arg(long)]
        state: PathBuf,
    },
    /// Run as the Lambda function (also chosen automatically under the Lambda runtime).
    Lambda,
    /// Manage the connectors of a deployed fleet (AWS credentials from the default chain).
    Connectors(crate::fleet::cli::ConnectorsArgs),
}

#[derive(clap::Args)]
struct Common {
    /// Connector configuration (the same JSON document as the Secrets Manager secret).
    #[arg(long)]
    config: PathBuf,
    /// Accept http://127.0.0.1 / http://[::1] org URLs (the local simulator only).
    #[arg(long)]
    allow_insecure_loopback: bool,
    /// Seconds this run may take.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    budget_secs: u64,
    /// Events per Okta page (1-1000).
    #[arg(long, default_value_t = MAX_PAGE_LIMIT, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE_LIMIT)))]
    limit: u32,
    /// Minutes the first poll looks back.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=129_600))]
    lookback_minutes: u64,
    /// Share of the org's System Log rate limit to use, in (0, 1] (as the Lambda's RATE_SHARE).
    #[arg(long, env = "RATE_SHARE", default_value_t = ClientOptions::default().rate_share, value_parser = parse_share)]
    rate_share: f64,
    /// Requests per rate-limit window left unused beyond the other clients' part.
    #[arg(long, env = "RATE_RESERVE", default_value_t = ClientOptions::default().rate_reserve)]
    rate_reserve: u32,
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("{text:?} is not a fraction in (0, 1], e.g. 0.5")),
    }
}

#[derive(clap::Args)]
struct Output {
    /// Cursor file (created on the first run).
    #[arg(long)]
    state: PathBuf,
    /// Where NDJSON goes: a file (appended) or - for stdout.
    #[arg(long, default_value = "-")]
    output: String,
    #[arg(long, value_enum, default_value_t = Format::Normalized)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// TOTAL v1 events (docs/schema.md).
    Normalized,
    /// OCSF 1.8.0 records (docs/ocsf.md).
    Ocsf,
    /// Okta's events as received.
    Raw,
}

/// The connector id the CLI uses for its local cursor items.
const LOCAL_CONNECTOR: &str = "local";

/// Exit code of a run that failed.
const EXIT_FAILED: u8 = 1;
/// Exit code of a run refused because the connector is paused.
const EXIT_PAUSED: u8 = 3;
/// Exit code of a run refused because another live process holds the lease.
const EXIT_LEASE_HELD: u8 = 4;

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Lambda) {
        return match crate::lambda::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("okta-ingest: {err}");
                ExitCode::FAILURE
            }
        };
    }
    crate::telemetry::init_tracing(false);
    if let Command::Connectors(args) = cli.command {
        return crate::fleet::cli::run(args).await;
    }
    let state = state_file(&cli.command);
    match execute(cli.command).await {
        Ok(summary) => {
            print_summary(&summary);
            exit_code(&summary, state.as_deref())
        }
        Err(message) => {
            eprintln!("okta-ingest: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// Success, or why nothing was done, with the way out.
fn exit_code(summary: &Summary, state: Option<&std::path::Path>) -> ExitCode {
    let state = state.map_or_else(|| "<file>".into(), |p| p.display().to_string());
    let message = summary.message.as_deref().unwrap_or_default();
    match summary.outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::Paused => {
            eprintln!(
                "okta-ingest: {message}; once the cause is fixed, run `okta-ingest resume --state {state}`"
            );
            ExitCode::from(EXIT_PAUSED)
        }
        Outcome::LeaseHeld => {
            eprintln!("okta-ingest: {message}");
            ExitCode::from(EXIT_LEASE_HELD)
        }
        Outcome::Failed => {
            eprintln!("okta-ingest: {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn state_file(command: &Command) -> Option<PathBuf> {
    match command {
        Command::Poll { output, .. } | Command::Backfill { output, .. } => {
            Some(output.state.clone())
        }
        Command::Disable { state, .. } | Command::Resume { state } => Some(state.clone()),
        Command::TestConnection { .. } | Command::Lambda | Command::Connectors(_) => None,
    }
}

async fn execute(command: Command) -> Result<Summary, String> {
    let id = ConnectorId::parse(LOCAL_CONNECTOR).map_err(|e| e.to_string())?;
    let mut tail_interval = None;
    let (common, output, action) = match command {
        Command::Poll {
            common,
            output,
            tail_interval_secs,
        } => {
            tail_interval = tail_interval_secs.map(Duration::from_secs);
            (common, Some(output), Action::Poll)
        }
        Command::Backfill {
            common,
            output,
            days,
            restart,
        } => (
            common,
            Some(output),
            Action::Backfill(BackfillRequest {
                days,
                restart,
                ..Default::default()
            }),
        ),
        Command::TestConnection { common } => (common, None, Action::TestConnection),
        Command::Disable { state, reason } => {
            return operate(id, state, Action::Disable { reason }).await
        }
        Command::Resume { state } => return operate(id, state, Action::Resume).await,
        Command::Lambda | Command::Connectors(_) => unreachable!("handled by run"),
    };
    let mut settings = RunSettings {
        allow_insecure_loopback: common.allow_insecure_loopback,
        safety_margin: Duration::from_secs(2),
        lease_owner_label: Some(format!("okta-ingest pid {}", std::process::id())),
        tail_interval,
        ..RunSettings::default()
    };
    settings.drain.page_limit = common.limit;
    settings.okta.rate_share = common.rate_share;
    settings.okta.rate_reserve = common.rate_reserve;
    settings.drain.lookback = Duration::from_secs(common.lookback_minutes * 60);
    let secrets = FileSecretSource::new(common.config.clone());
    let (store, sink, format): (_, _, Arc<dyn RecordFormat>) = match output {
        Some(output) => (
            FileCursorStore::new(output.state.clone()),
            open_sink(&output.output).await.map_err(|e| e.to_string())?,
            match output.format {
                Format::Normalized => Arc::new(Normalized),
                Format::Ocsf => Arc::new(Ocsf),
                Format::Raw => Arc::new(Raw),
            },
        ),
        // test-connection touches no cursor and writes no events.
        None => (
            FileCursorStore::new(std::env::temp_dir().join("okta-ingest-test-connection.json")),
            FileSink::stdout(),
            Arc::new(Normalized),
        ),
    };
    let connector = Connector::new(secrets, store, sink, settings).with_format(format);
    let budget = Duration::from_secs(common.budget_secs);
    run_action(&connector, id, action, budget).await
}

/// `disable` and `resume`: they touch only the state file (no credentials, no Okta).
async fn operate(id: ConnectorId, state: PathBuf, action: Action) -> Result<Summary, String> {
    let unused_secret = FileSecretSource::new(PathBuf::new());
    let connector = Connector::new(
        unused_secret,
        FileCursorStore::new(state),
        FileSink::stdout(),
        RunSettings::default(),
    );
    run_action(&connector, id, action, Duration::from_secs(30)).await
}

/// Runs one action locally; a failed run prints its summary and becomes the error message.
async fn run_action<S: SecretSource, C: CursorStore, K: EventSink>(
    connector: &Connector<S, C, K>,
    connector_id: ConnectorId,
    action: Action,
    budget: Duration,
) -> Result<Summary, String> {
    let invocation = Invocation {
        connector_id,
        action,
    };
    let summary = connector.handle(&invocation, Instant::now() + budget).await;
    if summary.outcome == Outcome::Failed {
        print_summary(&summary);
        return Err(summary.message.unwrap_or_else(|| "run failed".into()));
    }
    Ok(summary)
}

/// Okta's raw events, every one with an id, keyed by the normalizer's partition key (the
/// event's own id for events the normalizer would exclude, which are written all the same).
struct Raw;

impl RecordFormat for Raw {
    fn format(
        &self,
        normalizer: &Normalizer,
        raw: &str,
        ingested_at: time::OffsetDateTime,
    ) -> Result<Formatted, Exclusion> {
        let (event_id, partition_key, published) = match normalizer.normalize(raw, ingested_at) {
            Ok(normalized) => (
                normalized.event_id,
                normalized.partition_key,
                Some(normalized.published),
            ),
            Err(exclusion) => match exclusion.event_id.clone() {
                Some(id) => (id.clone(), id, None),
                None => return Err(exclusion),
            },
        };
        let mut data = Vec::with_capacity(raw.len() + 1);
        data.extend_from_slice(raw.as_bytes());
        data.push(b'\n');
        Ok(Formatted {
            record: Record {
                event_id,
                partition_key,
                data,
            },
            published,
        })
    }
}

async fn open_sink(output: &str) -> Result<FileSink, crate::sink::SinkError> {
    if output == "-" {
        Ok(FileSink::stdout())
    } else {
        FileSink::append(PathBuf::from(output)).await
    }
}

fn print_summary(summary: &Summary) {
    // stdout may carry the events, so the summary goes to stderr.
    eprintln!(
        "{}",
        serde_json::to_string_pretty(summary).unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(args: &[&str]) -> Result<Common, clap::Error> {
        let mut argv = vec!["okta-ingest", "test-connection", "--config", "c.json"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::TestConnection { common } => Ok(common),
            _ => unreachable!("parsed test-connection"),
        }
    }

    #[test]
    fn the_rate_share_and_reserve_default_to_the_lambdas_and_can_be_set() {
        // RATE_SHARE / RATE_RESERVE in the environment would override the defaults.
        if std::env::var_os("RATE_SHARE").is_none() && std::env::var_os("RATE_RESERVE").is_none() {
            let defaults = common(&[]).unwrap();
            assert_eq!(defaults.rate_share, ClientOptions::default().rate_share);
            assert_eq!(defaults.rate_reserve, 0);
        }
        let set = common(&["--rate-share", "0.8", "--rate-reserve", "3"]).unwrap();
        assert_eq!((set.rate_share, set.rate_reserve), (0.8, 3));
        for bad in ["0", "1.5", "half"] {
            let err = common(&["--rate-share", bad]).err().expect(bad).to_string();
            assert!(err.contains("not a fraction in (0, 1]"), "{bad}: {err}");
        }
    }
}

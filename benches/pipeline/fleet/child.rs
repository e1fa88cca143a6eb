//! The function's side of the fleet benchmark, in a process of its own as in a Lambda
//! container: the environment the template gives the function, `Settings::from_env` and
//! `lambda::init` per container, invocations through `lambda::handle`. Commands arrive on stdin,
//! one a line; each result is one tagged line on stdout, beside the function's own output (EMF
//! on stdout, JSON logs on stderr) that the parent measures as log volume.

use std::io::BufRead;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::lambda::{handle, init, LambdaConnector};
use okta_ingest::settings::Settings;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::connector_id;
use crate::procfs::status_kib;

/// The argument that makes the bench binary a fleet Lambda process.
pub const CHILD_FLAG: &str = "--fleet-lambda-child";
pub const RESULT_PREFIX: &str = "FLEET-RESULT ";

/// What one command did.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CommandResult {
    pub polls: usize,
    pub ok: usize,
    /// Polls whose outcome was not `ok`, with the first few messages.
    pub not_ok: usize,
    pub not_ok_messages: Vec<String>,
    pub published: u64,
    pub fetched: u64,
    /// Wall time of each invocation, sorted.
    pub durations_ms: Vec<f64>,
    pub secs: f64,
    /// `(distinct connectors polled, VmRSS KiB)` after the first poll and at each checkpoint.
    pub rss_kib: Vec<(usize, u64)>,
}

impl CommandResult {
    fn record(&mut self, outcome: Result<Value, String>, elapsed: Duration) {
        self.polls += 1;
        self.durations_ms.push(elapsed.as_secs_f64() * 1000.0);
        let summary = match outcome {
            Ok(summary) if summary["outcome"] == "ok" => summary,
            Ok(summary) => {
                self.fail(format!(
                    "{}: {}",
                    summary["connector_id"], summary["outcome"]
                ));
                return;
            }
            Err(message) => {
                self.fail(message);
                return;
            }
        };
        self.ok += 1;
        for drain in [&summary["drain"], &summary["backfill_drain"]] {
            self.published += drain["published"].as_u64().unwrap_or(0);
            self.fetched += drain["fetched"].as_u64().unwrap_or(0);
        }
    }

    fn fail(&mut self, message: String) {
        self.not_ok += 1;
        if self.not_ok_messages.len() < 5 {
            self.not_ok_messages.push(message);
        }
    }

    fn absorb(&mut self, other: CommandResult) {
        self.polls += other.polls;
        self.ok += other.ok;
        self.not_ok += other.not_ok;
        for m in other.not_ok_messages {
            if self.not_ok_messages.len() < 5 {
                self.not_ok_messages.push(m);
            }
        }
        self.published += other.published;
        self.fetched += other.fetched;
        self.durations_ms.extend(other.durations_ms);
    }
}

struct Container {
    connector: LambdaConnector,
    settings: Settings,
    /// The function timeout: each invocation's deadline is this far from its start.
    timeout: Duration,
}

impl Container {
    /// A cold start: settings from the environment, SDK configuration and clients.
    async fn start() -> Container {
        let settings = Settings::from_env().expect("the fleet function environment is valid");
        let timeout = super::template::Deployment::from_template()
            .expect("the template's defaults are readable")
            .timeout;
        Container {
            connector: init(&settings).await,
            settings,
            timeout,
        }
    }

    async fn poll(&self, index: usize, result: &mut CommandResult) {
        let mut context = Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        context.deadline = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
            as u64
            + self.timeout.as_millis() as u64;
        let event = LambdaEvent::new(
            json!({"connector_id": connector_id(index), "action": "poll"}),
            context,
        );
        let started = Instant::now();
        let outcome = handle(&self.connector, &self.settings, event)
            .await
            .map_err(|d| {
                format!(
                    "{}: {} {}",
                    connector_id(index),
                    d.error_type,
                    d.error_message
                )
            });
        result.record(outcome, started.elapsed());
    }
}

/// Runs the command loop until stdin closes.
pub fn main() {
    okta_ingest::telemetry::init_tracing(true);
    let rt = crate::runtime();
    let mut pool: Vec<Arc<Container>> = Vec::new();
    let mut serial: Option<Container> = None;
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin is readable");
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> usize {
            words
                .get(i)
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("bad fleet command {line:?}"))
        };
        let started = Instant::now();
        let mut result = match words.first().copied() {
            // pool <containers> <from> <to>: like reserved concurrency, at most <containers>
            // invocations at once, each container serving one at a time and staying warm.
            Some("pool") => rt.block_on(async {
                while pool.len() < number(1) {
                    pool.push(Arc::new(Container::start().await));
                }
                run_pool(&pool, number(2)..number(3)).await
            }),
            // serial <from> <to>: one container of its own, one invocation after another.
            Some("serial") => rt.block_on(async {
                if serial.is_none() {
                    serial = Some(Container::start().await);
                }
                let container = serial.as_ref().expect("started above");
                let mut result = CommandResult::default();
                for index in number(1)..number(2) {
                    container.poll(index, &mut result).await;
                }
                result
            }),
            // memory <n1,n2,...>: one fresh container polls connectors 0, 1, ... in turn; RSS
            // after the first poll and once n1, n2, ... distinct connectors were polled.
            Some("memory") => rt.block_on(memory(words.get(1).copied().unwrap_or(""))),
            _ => panic!("unknown fleet command {line:?}"),
        };
        result.secs = started.elapsed().as_secs_f64();
        result.durations_ms.sort_unstable_by(|a, b| a.total_cmp(b));
        println!(
            "{RESULT_PREFIX}{}",
            serde_json::to_string(&result).expect("a result serializes")
        );
    }
}

async fn run_pool(pool: &[Arc<Container>], range: std::ops::Range<usize>) -> CommandResult {
    let next = Arc::new(AtomicUsize::new(range.start));
    let total = Arc::new(Mutex::new(CommandResult::default()));
    let mut workers = tokio::task::JoinSet::new();
    for container in pool {
        let (container, next, total, end) =
            (container.clone(), next.clone(), total.clone(), range.end);
        workers.spawn(async move {
            let mut mine = CommandResult::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= end {
                    break;
                }
                container.poll(index, &mut mine).await;
            }
            total.lock().expect("not poisoned").absorb(mine);
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.expect("a container task completes");
    }
    let mut total = total.lock().expect("not poisoned");
    std::mem::take(&mut *total)
}

async fn memory(checkpoints: &str) -> CommandResult {
    let checkpoints: Vec<usize> = checkpoints
        .split(',')
        .map(|n| n.parse().expect("memory checkpoints are numbers"))
        .collect();
    let container = Container::start().await;
    let mut result = CommandResult::default();
    container.poll(0, &mut result).await;
    result.rss_kib.push((1, status_kib("VmRSS")));
    let last = checkpoints.iter().copied().max().unwrap_or(1);
    for index in 1..last {
        container.poll(index, &mut result).await;
        if checkpoints.contains(&(index + 1)) {
            result.rss_kib.push((index + 1, status_kib("VmRSS")));
        }
    }
    result
}

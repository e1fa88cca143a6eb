//! The fleet benchmark: 1,000 connectors, each on its own simulated Okta org and with its own
//! tagged secret, polled through the real Lambda handler against moto with a bounded number of
//! concurrent containers, as reserved concurrency bounds a fleet. It measures whose events reach
//! the stream, the AWS calls each poll makes (counted on the wire by a proxy in front of moto),
//! the handler's memory as it sees more connectors, and what the fleet costs per connector.
//!
//! The function runs in child processes ([`child`]), so their memory, stdout and stderr are
//! the function's alone; this process holds moto, the proxy and the simulated orgs.

pub mod attribution;
pub mod calls;
pub mod child;
pub mod cost;
pub mod figures;
pub mod template;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_secretsmanager::types::Tag;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, read_all_records, MotoServer,
};
use okta_ingest::testkit::proxy::FaultProxy;
use okta_ingest::testkit::rig::sim_config;
use okta_sim::{SimConfig, SimFleet};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use attribution::Attribution;
use calls::CallCounts;
use child::{CommandResult, CHILD_FLAG, RESULT_PREFIX};
use template::Deployment;

pub const CONNECTORS: usize = 1_000;
/// Invocations at once. The template reserves 100; on 2 shared cores moto answers fewer in
/// parallel than that, and 16 keeps its answers well inside the SDK's 2 s attempt timeout.
pub const CONCURRENCY: usize = 16;
/// Connectors polled one after another by a container of their own, for exact per-poll counts.
pub const SERIAL: usize = 20;
pub const MEMORY_CHECKPOINTS: [usize; 3] = [10, 100, 1_000];
/// Events in each org at start (one page), and added before the one-page polls.
const FIRST_EVENTS: usize = 20;
const NEW_EVENTS: usize = 5;
const SEED: u64 = 1_000;
const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";
const SHARDS: i32 = 4;
const BUCKET: &str = "okta-ingest-dead-letters";
/// moto does not check the role; its AssumeRole answers with a session tagged as asked.
const ROLE: &str = "arn:aws:iam::123456789012:role/okta-ingest-connector-access";

pub fn connector_id(index: usize) -> String {
    format!("fleet-{index:04}")
}

pub fn connector_index(id: &str) -> Option<usize> {
    id.strip_prefix("fleet-")?.parse().ok()
}

/// Each org accepts only its own API token, so a secret used for the wrong org is refused.
fn token(index: usize) -> String {
    format!("00fleet-{index:04}-token-0123456789abcdef")
}

/// One measured step: a command to the function and the AWS calls it made.
pub struct Step {
    pub name: &'static str,
    pub result: CommandResult,
    pub calls: CallCounts,
    /// What the function wrote to stdout and stderr (CloudWatch Logs ingests both).
    pub log_bytes: u64,
    /// Distinct EMF metric series (name and dimension values) the step published.
    pub metric_series: BTreeSet<String>,
}

impl Step {
    pub fn per_poll(&self, kind: calls::CallKind) -> f64 {
        self.calls.per_poll(kind, self.result.polls)
    }

    pub fn log_bytes_per_poll(&self) -> f64 {
        self.log_bytes as f64 / self.result.polls.max(1) as f64
    }

    pub fn mean_ms(&self) -> f64 {
        let d = &self.result.durations_ms;
        d.iter().sum::<f64>() / d.len().max(1) as f64
    }
}

pub struct FleetRun {
    pub deployment: Deployment,
    pub setup_secs: f64,
    pub steps: Vec<Step>,
    pub memory: CommandResult,
    pub attribution: Attribution,
    pub total_secs: f64,
}

impl FleetRun {
    pub fn step(&self, name: &str) -> &Step {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .expect("every step ran")
    }
}

pub const FIRST: &str = "first poll, fleet";
pub const EMPTY_FLEET: &str = "empty poll, fleet";
pub const PAGE_FLEET: &str = "one-page poll, fleet";
pub const EMPTY_COLD: &str = "empty poll, cold container";
pub const EMPTY_WARM: &str = "empty poll, warm container";
pub const PAGE_WARM: &str = "one-page poll, warm container";

/// moto, its table, stream and bucket, the simulated orgs and their secrets.
struct Setup {
    deployment: Deployment,
    moto: MotoServer,
    aws: aws_config::SdkConfig,
    fleet: SimFleet,
    secs: f64,
}

async fn set_up(started: Instant) -> Result<Setup, String> {
    let deployment = Deployment::from_template()?;
    // One request at a time: moto's threaded server numbers concurrent PutRecords to one shard
    // alike, and the later record replaces the earlier (real Kinesis keeps both).
    let moto = MotoServer::start_serialized();
    let aws = moto.sdk_config().await;
    create_cursor_table(&aws, TABLE).await;
    create_stream(&aws, STREAM, SHARDS).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(BUCKET)
    .send()
    .await
    .map_err(|e| format!("create the dead-letter bucket: {e}"))?;
    let configs = (0..CONNECTORS)
        .map(|i| SimConfig {
            ssws_tokens: vec![token(i)],
            ..sim_config(FIRST_EVENTS, SEED + i as u64)
        })
        .collect();
    let fleet = SimFleet::start(configs)
        .await
        .map_err(|e| format!("simulated orgs: {e}"))?;
    create_secrets(&aws, &fleet).await?;
    Ok(Setup {
        deployment,
        moto,
        aws,
        fleet,
        secs: started.elapsed().as_secs_f64(),
    })
}

pub async fn run() -> Result<FleetRun, String> {
    let started = Instant::now();
    let Setup {
        deployment,
        moto,
        aws,
        fleet,
        secs: setup_secs,
    } = set_up(started).await?;
    let proxy = FaultProxy::start(&moto.endpoint()).await;

    let mut function = LambdaProcess::spawn(&deployment, &proxy.endpoint())?;
    let mut steps = Vec::new();
    let pool = format!("pool {CONCURRENCY} 0 {CONNECTORS}");
    let serial = format!("serial 0 {SERIAL}");
    for (name, command) in [
        (FIRST, pool.as_str()),
        (EMPTY_FLEET, pool.as_str()),
        (PAGE_FLEET, pool.as_str()),
        (EMPTY_COLD, serial.as_str()),
        (EMPTY_WARM, serial.as_str()),
        (PAGE_WARM, serial.as_str()),
    ] {
        if name == PAGE_FLEET || name == PAGE_WARM {
            let orgs = if name == PAGE_FLEET {
                CONNECTORS
            } else {
                SERIAL
            };
            for sim in &fleet.orgs()[..orgs] {
                sim.append_events(NEW_EVENTS);
            }
        }
        eprintln!("  fleet: {name} ({command})");
        proxy.take_heads();
        let (result, log_bytes, metric_series) = function.command(command).await?;
        let calls = CallCounts::from_heads(&proxy.take_heads());
        steps.push(Step {
            name,
            result,
            calls,
            log_bytes,
            metric_series,
        });
    }
    function.finish().await;

    // Straight to moto: the proxy's record of request heads is no part of the function.
    let memory = measure_memory(&deployment, &moto.endpoint()).await?;

    let records = read_all_records(&aws, STREAM).await;
    let attribution = attribution::check(&fleet, &records);
    fleet.shutdown().await;
    drop(proxy);
    drop(moto);
    Ok(FleetRun {
        deployment,
        setup_secs,
        steps,
        memory,
        attribution,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// The handler's memory alone (`-- fleet-memory`): a fresh process polling 1,000 distinct
/// connectors in turn.
pub async fn memory_only() -> Result<(Deployment, CommandResult), String> {
    let setup = set_up(Instant::now()).await?;
    let memory = measure_memory(&setup.deployment, &setup.moto.endpoint()).await?;
    setup.fleet.shutdown().await;
    Ok((setup.deployment, memory))
}

async fn measure_memory(deployment: &Deployment, endpoint: &str) -> Result<CommandResult, String> {
    eprintln!("  fleet: memory at {MEMORY_CHECKPOINTS:?} distinct connectors");
    let mut alone = LambdaProcess::spawn(deployment, endpoint)?;
    let checkpoints: Vec<String> = MEMORY_CHECKPOINTS.iter().map(|n| n.to_string()).collect();
    let (memory, ..) = alone
        .command(&format!("memory {}", checkpoints.join(",")))
        .await?;
    alone.finish().await;
    Ok(memory)
}

/// `okta-ingest/<id>` per connector, tagged with its id, as `connectors add` writes it.
async fn create_secrets(aws: &aws_config::SdkConfig, fleet: &SimFleet) -> Result<(), String> {
    let client = aws_sdk_secretsmanager::Client::new(aws);
    let secrets: Vec<(usize, String)> = fleet
        .orgs()
        .iter()
        .enumerate()
        .map(|(i, sim)| {
            let document = serde_json::json!({
                "org_url": sim.base_url(),
                "auth": {"type": "ssws", "token": token(i)},
            });
            (i, document.to_string())
        })
        .collect();
    let secrets = Arc::new(secrets);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers: tokio::task::JoinSet<Result<(), String>> = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, secrets, next) = (client.clone(), secrets.clone(), next.clone());
        writers.spawn(async move {
            loop {
                let at = next.fetch_add(1, Ordering::Relaxed);
                let Some((i, document)) = secrets.get(at) else {
                    return Ok(());
                };
                client
                    .create_secret()
                    .name(format!("okta-ingest/{}", connector_id(*i)))
                    .secret_string(document)
                    .tags(
                        Tag::builder()
                            .key("connector_id")
                            .value(connector_id(*i))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| format!("create the secret of {}: {e}", connector_id(*i)))?;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// The function's process: commands in, tagged results and the function's output out.
struct LambdaProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    stderr_bytes: Arc<AtomicU64>,
}

impl LambdaProcess {
    /// The environment the template gives the function, with `endpoint` for every AWS service.
    fn spawn(deployment: &Deployment, endpoint: &str) -> Result<LambdaProcess, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .arg(CHILD_FLAG)
            .env("AWS_ENDPOINT_URL", endpoint)
            .env("CURSOR_TABLE", TABLE)
            .env("EVENT_STREAM", STREAM)
            .env("DEAD_LETTER_BUCKET", BUCKET)
            .env("SECRET_ID_TEMPLATE", "okta-ingest/{connector_id}")
            .env("CONNECTOR_ACCESS_ROLE_ARN", ROLE)
            .env(
                "CONNECTOR_CACHE_SIZE",
                deployment.connector_cache_size.to_string(),
            )
            .env("RUST_LOG", "info")
            .env("OKTA_ALLOW_INSECURE_LOOPBACK", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("start the fleet function process: {e}"))?;
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut stderr = child.stderr.take().expect("piped");
        let stderr_bytes = Arc::new(AtomicU64::new(0));
        let counter = stderr_bytes.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = stderr.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
        });
        Ok(LambdaProcess {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr_bytes,
        })
    }

    /// Runs `command`; its result, the bytes the function logged meanwhile and the metric
    /// series of its EMF documents.
    async fn command(
        &mut self,
        command: &str,
    ) -> Result<(CommandResult, u64, BTreeSet<String>), String> {
        let stderr_before = self.stderr_bytes.load(Ordering::Relaxed);
        let stdin = self.stdin.as_mut().expect("open until finish");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| format!("the fleet function process is gone: {e}"))?;
        let (mut stdout_bytes, mut series) = (0u64, BTreeSet::new());
        loop {
            let line = self
                .stdout
                .next_line()
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("the fleet function process ended during {command:?}"))?;
            if let Some(result) = line.strip_prefix(RESULT_PREFIX) {
                let result = serde_json::from_str(result).map_err(|e| e.to_string())?;
                // Let the stderr reader catch up with what was written before the result.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let stderr = self.stderr_bytes.load(Ordering::Relaxed) - stderr_before;
                return Ok((result, stdout_bytes + stderr, series));
            }
            stdout_bytes += line.len() as u64 + 1;
            metric_series(&line, &mut series);
        }
    }

    async fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait().await;
    }
}

/// Adds each metric of an EMF document as `name{dimension=value,...}`, once per dimension set.
fn metric_series(line: &str, series: &mut BTreeSet<String>) {
    let Ok(doc) = serde_json::from_str::<Value>(line) else {
        return;
    };
    let Some(directives) = doc["_aws"]["CloudWatchMetrics"].as_array() else {
        return;
    };
    for directive in directives {
        let namespace = directive["Namespace"].as_str().unwrap_or("");
        let metrics = directive["Metrics"].as_array().cloned().unwrap_or_default();
        let sets = directive["Dimensions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for set in &sets {
            let dims: Vec<String> = set
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|d| format!("{d}={}", doc[d].as_str().unwrap_or("")))
                .collect();
            for metric in &metrics {
                series.insert(format!(
                    "{namespace}/{}{{{}}}",
                    metric["Name"].as_str().unwrap_or(""),
                    dims.join(",")
                ));
            }
        }
    }
}

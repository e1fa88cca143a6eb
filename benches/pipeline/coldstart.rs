//! A real cold start: the release binary started as Lambda starts it, against a local Runtime
//! API emulator, timed from process start to its first `GET /runtime/invocation/next` (the
//! moment the function is ready for its first event).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::lambda::FAKE_AWS_ENVIRONMENT;

const RUNS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Times to ready of `RUNS` fresh processes, sorted.
pub async fn run(binary: &Path) -> Result<Vec<Duration>, String> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        times.push(once(binary).await?);
    }
    times.sort_unstable();
    Ok(times)
}

async fn once(binary: &Path) -> Result<Duration, String> {
    let (ready, mut ready_rx) = mpsc::unbounded_channel::<Instant>();
    // The emulator never hands out an event: readiness is all this measures.
    let api = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let _ = ready.send(Instant::now());
            std::future::pending::<&'static str>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("binding the Runtime API emulator: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("reading the emulator's address: {e}"))?;
    let server = tokio::spawn(async move { axum::serve(listener, api).await });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", addr.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "okta-ingest"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/okta-ingest"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("CURSOR_TABLE", "okta-ingest-cursors"),
            ("EVENT_STREAM", "okta-ingest-events"),
        ])
        .envs(FAKE_AWS_ENVIRONMENT)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let result = tokio::select! {
        at = ready_rx.recv() => at
            .map(|at| at.saturating_duration_since(started))
            .ok_or_else(|| "the emulator stopped".to_owned()),
        status = child.wait() => Err(format!("the function exited before asking for an event: {status:?}")),
        _ = tokio::time::sleep(READY_TIMEOUT) => Err("not ready within 10 s".to_owned()),
    };
    let _ = child.kill().await;
    server.abort();
    result
}

//! The Lambda's own start-up work and a warm poll with nothing new, measured in-process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use okta_ingest::settings::Settings;
use tokio::time::Instant;

use crate::rig::counting_rig;

const WARM_POLLS: usize = 30;

/// Static, fake AWS settings: the SDK clients are built exactly as in the Lambda, but nothing
/// looks for credentials or a region anywhere else (no metadata-service calls).
pub fn isolate_aws_environment() {
    for (name, value) in FAKE_AWS_ENVIRONMENT {
        std::env::set_var(name, value);
    }
}

/// A region and bench-only credentials, and no metadata service or config files to look in.
pub const FAKE_AWS_ENVIRONMENT: [(&str, &str); 6] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "AKIDBENCHONLY"),
    ("AWS_SECRET_ACCESS_KEY", "bench-only-not-a-secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
    ("AWS_CONFIG_FILE", "/dev/null"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
];

/// `Settings::from_vars` + AWS config and SDK clients + `Connector::new`, as the Lambda's init.
pub async fn cold_init() -> Duration {
    let vars: HashMap<String, String> = [
        ("CURSOR_TABLE", "okta-ingest-cursors"),
        ("EVENT_STREAM", "okta-ingest-events"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let started = Instant::now();
    let settings = Settings::from_vars(&vars).expect("the bench's Lambda settings are valid");
    let connector = okta_ingest::lambda::init(&settings).await;
    let elapsed = started.elapsed();
    drop(connector);
    elapsed
}

/// Durations of polls that find nothing new, after a first poll drained a small backlog.
pub async fn warm_empty_polls() -> Vec<Duration> {
    let rig = counting_rig(100).await;
    rig.poll_within(Duration::from_secs(30)).await;
    let mut durations = Vec::with_capacity(WARM_POLLS);
    for _ in 0..WARM_POLLS {
        let started = Instant::now();
        rig.poll_within(Duration::from_secs(30)).await;
        durations.push(started.elapsed());
    }
    rig.shutdown().await;
    durations.sort_unstable();
    durations
}

/// `okta-ingest` next to this bench binary's profile directory, if it was built.
pub fn release_binary() -> Option<(PathBuf, u64)> {
    let exe = std::env::current_exe().ok()?;
    // <target>/release/deps/pipeline-<hash> → <target>/release/okta-ingest
    let path = exe.parent()?.parent()?.join("okta-ingest");
    let size = std::fs::metadata(&path).ok()?.len();
    Some((path, size))
}

/// The function's default memory in MB, as the infra template declares it
/// (`Parameters.FunctionMemorySize.Default`).
pub fn template_memory_mb() -> f64 {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml");
    let template = std::fs::read_to_string(path).expect("infra/template.yaml is readable");
    template
        .lines()
        .skip_while(|line| line.trim() != "FunctionMemorySize:")
        .skip(1)
        .take_while(|line| line.starts_with("    "))
        .find_map(|line| line.trim().strip_prefix("Default:"))
        .and_then(|value| value.trim().parse().ok())
        .expect("infra/template.yaml declares FunctionMemorySize with a numeric Default")
}

//! The `okta-ingest` binary as a local connector: the simulator, and the config, cursor and
//! output files in a folder of their own. Cargo names the binary only to integration tests
//! (`env!("CARGO_BIN_EXE_okta-ingest")`), so they pass it in.

use std::path::PathBuf;
use std::process::{Command, Output};

use okta_sim::Simulator;

use super::rig::{sim_config, ssws_secret};

/// Runs `binary` with `args` off the runtime's threads, so an in-process simulator keeps
/// serving, and outside any Lambda runtime.
pub async fn run<S: AsRef<str>>(binary: &'static str, args: &[S]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.as_ref().to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(binary)
            .args(&args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run okta-ingest")
    })
    .await
    .unwrap()
}

/// The simulator and the files of one local connector.
pub struct LocalConnector {
    pub sim: Simulator,
    _dir: tempfile::TempDir,
    pub state: PathBuf,
    pub output: PathBuf,
    pub config: PathBuf,
}

impl LocalConnector {
    /// A simulator of `events` events (from `seed`) and its SSWS config.
    pub async fn start(events: usize, seed: u64) -> LocalConnector {
        let sim = Simulator::start(sim_config(events, seed)).await.unwrap();
        let secret = ssws_secret(&sim);
        LocalConnector::new(sim, &secret)
    }

    /// `sim`, with `secret` as the connector's config file.
    pub fn new(sim: Simulator, secret: &str) -> LocalConnector {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("connector.json");
        std::fs::write(&config, secret).unwrap();
        LocalConnector {
            sim,
            state: dir.path().join("cursor.json"),
            output: dir.path().join("events.ndjson"),
            config,
            _dir: dir,
        }
    }

    pub fn state(&self) -> &str {
        self.state.to_str().unwrap()
    }

    pub fn config(&self) -> &str {
        self.config.to_str().unwrap()
    }

    /// `poll` of this connector, with `extra` arguments.
    pub fn poll(&self, extra: &[&str]) -> Vec<String> {
        let output = self.output.to_str().unwrap();
        let own = ["poll", "--config", self.config(), "--state", self.state()];
        own.into_iter()
            .chain(["--output", output, "--allow-insecure-loopback"])
            .chain(extra.iter().copied())
            .map(str::to_string)
            .collect()
    }

    /// The lines written to the output so far (none before the first poll).
    pub fn lines(&self) -> usize {
        std::fs::read_to_string(&self.output).map_or(0, |text| text.lines().count())
    }
}

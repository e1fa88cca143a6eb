//! `okta-sim`: the local Okta System Log simulator as a standalone process (demo, manual runs).

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use okta_sim::{SimConfig, SimFleet};

/// Serves a simulated Okta System Log on 127.0.0.1 until SIGTERM/SIGINT.
#[derive(Parser)]
#[command(name = "okta-sim")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one); with --orgs N, the first of N consecutive ports.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How many orgs to simulate, each on its own port with its own events, clients and
    /// rate-limit bucket; org i uses seed + i.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    orgs: u16,
    /// Seed of the generated events (overrides the config file).
    #[arg(long)]
    seed: Option<u64>,
    /// Events in the log at start (overrides the config file).
    #[arg(long)]
    events: Option<usize>,
    /// JSON file with SimConfig fields (clients, ssws_tokens, rate_limit, ...).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read --config {}: {e}", path.display()))?;
            serde_json::from_str::<SimConfig>(&text).map_err(|e| {
                anyhow::anyhow!(
                    "--config {} is not a valid simulator config: {e}",
                    path.display()
                )
            })?
        }
        None => SimConfig::default(),
    };
    config.seed = args.seed.unwrap_or(config.seed);
    config.initial_events = args.events.unwrap_or(config.initial_events);
    let configs = (0..u64::from(args.orgs))
        .map(|i| SimConfig {
            seed: config.seed.wrapping_add(i),
            ..config.clone()
        })
        .collect();
    let fleet = SimFleet::start_on(configs, args.port).await?;
    let mut stdout = std::io::stdout();
    for sim in fleet.orgs() {
        writeln!(stdout, "okta-sim listening on {}", sim.base_url())?;
    }
    stdout.flush()?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    fleet.shutdown().await;
    Ok(())
}

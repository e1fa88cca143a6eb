//! The local command: `okta-ingest poll` drains the simulator into an NDJSON file and saves
//! the cursor after the output; `test-connection` reports the recent event count.
#![cfg(feature = "testkit")]

use std::process::Command;

use okta_ingest::testkit::rig::{sim_config, ssws_secret};
use okta_sim::Simulator;

/// Runs the binary off the runtime's threads, so the in-process simulator keeps serving.
async fn okta_ingest(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_okta-ingest"))
            .args(&args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run okta-ingest")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_writes_ndjson_then_saves_the_cursor_and_continues_from_it() {
    let sim = Simulator::start(sim_config(1800, 41)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connector.json");
    std::fs::write(&config, ssws_secret(&sim)).unwrap();
    let state = dir.path().join("cursor.json");
    let output = dir.path().join("events.ndjson");
    let args = [
        "poll",
        "--config",
        config.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--allow-insecure-loopback",
    ];
    let run = okta_ingest(&args).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = std::fs::read_to_string(&output).unwrap();
    let first_count = lines.lines().count();
    assert!(first_count > 1000, "{first_count}");
    for line in lines.lines() {
        okta_ingest::testkit::schema::assert_valid_total_event(
            &serde_json::from_str(line).unwrap(),
        );
    }
    assert!(std::fs::read_to_string(&state).unwrap().contains("after="));

    sim.append_events(100);
    let args = [
        "poll",
        "--config",
        config.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--allow-insecure-loopback",
        "--format",
        "raw",
    ];
    let run = okta_ingest(&args).await;
    assert!(run.status.success());
    let total = std::fs::read_to_string(&output).unwrap().lines().count();
    assert_eq!(
        total,
        first_count + 100,
        "raw format writes every new event, nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_and_bad_config_messages() {
    let sim = Simulator::start(sim_config(250, 42)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connector.json");
    std::fs::write(&config, ssws_secret(&sim)).unwrap();
    let path = config.to_str().unwrap();
    let run = okta_ingest(&[
        "test-connection",
        "--config",
        path,
        "--allow-insecure-loopback",
    ])
    .await;
    assert!(run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("\"events_last_24h\": 250"));

    // Without the explicit flag, a loopback http org URL is refused, naming the field.
    let run = okta_ingest(&["test-connection", "--config", path]).await;
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("org_url"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_simulator_config_and_secret_work_together() {
    let root = env!("CARGO_MANIFEST_DIR");
    let sim_config: okta_sim::SimConfig = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/events/okta-sim.json")).unwrap(),
    )
    .unwrap();
    let events = sim_config.initial_events;
    let sim = Simulator::start(sim_config).await.unwrap();
    let mut secret: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/events/secret.simulator.json")).unwrap(),
    )
    .unwrap();
    secret["org_url"] = sim.base_url().into();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connector.json");
    std::fs::write(&config, secret.to_string()).unwrap();
    let run = okta_ingest(&[
        "test-connection",
        "--config",
        config.to_str().unwrap(),
        "--allow-insecure-loopback",
    ])
    .await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stderr).contains(&format!("\"events_last_24h\": {events}"))
    );
}

//! The local command: `okta-ingest poll` drains the simulator into an NDJSON file and saves
//! the cursor after the output; `test-connection` reports the recent event count.
#![cfg(feature = "testkit")]

use okta_ingest::testkit::cli::{self, LocalConnector};
use okta_sim::Simulator;

async fn okta_ingest<S: AsRef<str>>(args: &[S]) -> std::process::Output {
    cli::run(env!("CARGO_BIN_EXE_okta-ingest"), args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_writes_ndjson_then_saves_the_cursor_and_continues_from_it() {
    let local = LocalConnector::start(1800, 41).await;
    let run = okta_ingest(&local.poll(&[])).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = std::fs::read_to_string(&local.output).unwrap();
    let first_count = lines.lines().count();
    assert!(first_count > 1000, "{first_count}");
    for line in lines.lines() {
        okta_ingest::testkit::schema::assert_valid_total_event(
            &serde_json::from_str(line).unwrap(),
        );
    }
    assert!(std::fs::read_to_string(&local.state)
        .unwrap()
        .contains("after="));

    local.sim.append_events(100);
    let run = okta_ingest(&local.poll(&["--format", "raw"])).await;
    assert!(run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("\"excluded\": {}"),
        "events written raw are not reported as excluded: {stderr}"
    );
    let total = std::fs::read_to_string(&local.output)
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        total,
        first_count + 100,
        "raw format writes every new event, nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn test_connection_and_bad_config_messages() {
    let local = LocalConnector::start(250, 42).await;
    let path = local.config();
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
    let local = LocalConnector::new(sim, &secret.to_string());
    let run = okta_ingest(&[
        "test-connection",
        "--config",
        local.config(),
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

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_connector_exits_non_zero_until_resumed_from_the_command_line() {
    let local = LocalConnector::start(300, 43).await;
    let state = local.state();
    let run = okta_ingest(&["disable", "--state", state, "--reason", "key rotation"]).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = okta_ingest(&local.poll(&[])).await;
    assert_eq!(run.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("key rotation"), "{stderr}");
    assert!(
        stderr.contains(&format!("okta-ingest resume --state {state}")),
        "{stderr}"
    );
    assert!(
        local.sim.requests().is_empty(),
        "a paused connector calls nobody"
    );

    let run = okta_ingest(&["resume", "--state", state]).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let run = okta_ingest(&local.poll(&[])).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(local.lines() > 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_refused_by_a_live_lease_holder_exits_non_zero_naming_it() {
    let local = LocalConnector::start(300, 44).await;
    local
        .sim
        .inject(okta_sim::Fault::Delay(std::time::Duration::from_secs(3)), 1);
    let args = local.poll(&[]);
    let holder = tokio::spawn({
        let args = args.clone();
        async move { okta_ingest(&args).await }
    });
    // The first poll holds the lease while Okta is slow to answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let leased =
        || std::fs::read_to_string(&local.state).is_ok_and(|text| text.contains("okta-ingest pid"));
    while !leased() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(leased(), "the first poll took the lease");
    let refused = okta_ingest(&args).await;
    assert_eq!(refused.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("okta-ingest pid"), "{stderr}");
    assert!(stderr.contains("until"), "{stderr}");
    assert!(holder.await.unwrap().status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn help_says_what_the_tool_is_and_documents_the_exit_codes() {
    let run = okta_ingest(&["--help"]).await;
    let help = String::from_utf8_lossy(&run.stdout);
    assert!(
        help.lines()
            .next()
            .unwrap()
            .starts_with("Moves Okta System Log events into Kinesis"),
        "{help}"
    );
    assert!(help.contains("3 the connector is paused"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tailing_poll_writes_events_persisted_while_it_runs_and_releases_the_lease() {
    let local = LocalConnector::start(200, 45).await;
    let args = local.poll(&["--tail-interval-secs", "1", "--budget-secs", "6"]);
    let tail = tokio::spawn(async move { okta_ingest(&args).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while local.lines() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let first = local.lines();
    assert!(first > 0, "the first round wrote the backlog");
    local.sim.append_events(50);
    let run = tail.await.unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("\"tail_rounds\""), "{stderr}");
    assert!(
        local.lines() > first,
        "events appended while tailing were written"
    );
    let saved = std::fs::read_to_string(&local.state).unwrap();
    assert!(
        !saved.contains("okta-ingest pid"),
        "the lease is released: {saved}"
    );
}

//! `okta-ingest poll --format ocsf` drains the simulator's mix of event types into OCSF
//! records, every one valid against its OCSF 1.8.0 class.
#![cfg(feature = "testkit")]

use std::collections::BTreeSet;
use std::process::Command;

use okta_ingest::testkit::ocsf_schema;
use okta_ingest::testkit::rig::{sim_config, ssws_secret};
use okta_sim::Simulator;

#[tokio::test(flavor = "multi_thread")]
async fn poll_format_ocsf_writes_valid_records_of_every_emitted_class() {
    let sim = Simulator::start(sim_config(600, 7)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("connector.json");
    // The `all` policy publishes the simulator's types outside the catalog too (the fallback).
    let mut secret: serde_json::Value = serde_json::from_str(&ssws_secret(&sim)).unwrap();
    secret["event_policy"] = "all".into();
    std::fs::write(&config, secret.to_string()).unwrap();
    let state = dir.path().join("cursor.json");
    let output = dir.path().join("ocsf.ndjson");
    let args: Vec<String> = [
        "poll",
        "--config",
        config.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
        "--allow-insecure-loopback",
        "--format",
        "ocsf",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_okta-ingest"))
            .args(&args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .expect("run okta-ingest")
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut classes = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for line in text.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        ocsf_schema::assert_valid_ocsf(&record);
        classes.insert(record["class_uid"].as_u64().unwrap());
        assert!(ids.insert(record["metadata"]["uid"].as_str().unwrap().to_owned()));
    }
    assert!(ids.len() > 300, "{} records", ids.len());
    for class in [2004, 3001, 3002, 3005, 3006] {
        assert!(
            classes.contains(&class),
            "no class {class} among {classes:?}"
        );
    }
}

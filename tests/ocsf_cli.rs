//! `okta-ingest poll --format ocsf` drains the simulator's mix of event types into OCSF
//! records, every one valid against its OCSF 1.8.0 class.
#![cfg(feature = "testkit")]

use std::collections::BTreeSet;

use okta_ingest::testkit::cli::{self, LocalConnector};
use okta_ingest::testkit::ocsf_schema;
use okta_ingest::testkit::rig::{sim_config, ssws_secret};
use okta_sim::Simulator;

#[tokio::test(flavor = "multi_thread")]
async fn poll_format_ocsf_writes_valid_records_of_every_emitted_class() {
    let sim = Simulator::start(sim_config(600, 7)).await.unwrap();
    // The `all` policy publishes the simulator's types outside the catalog too (the fallback).
    let mut secret: serde_json::Value = serde_json::from_str(&ssws_secret(&sim)).unwrap();
    secret["event_policy"] = "all".into();
    let local = LocalConnector::new(sim, &secret.to_string());
    let args = local.poll(&["--format", "ocsf"]);
    let run = cli::run(env!("CARGO_BIN_EXE_okta-ingest"), &args).await;
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&local.output).unwrap();
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

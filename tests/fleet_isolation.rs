//! Fleet mode in one process: two connectors (two simulated Okta orgs, each with its own token)
//! polled concurrently through the Lambda handler against moto, with per-connector scoped
//! credentials. Nothing of one connector may reach the other: events, secrets, tokens, sessions.
#![cfg(feature = "testkit")]

use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;

use aws_sdk_secretsmanager::types::Tag;
use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::fleet::scoped::ScopedAccess;
use okta_ingest::lambda::{connector, handle};
use okta_ingest::secrets::SecretSource;
use okta_ingest::settings::Settings;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, read_all_records, MotoServer,
};
use okta_ingest::testkit::rig::{lambda_settings, org_sim_config, org_ssws_secret};
use okta_sim::Simulator;
use serde_json::{json, Value};

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";
const ROLE: &str = "arn:aws:iam::123456789012:role/okta-ingest-connector-access";

struct Org {
    id: &'static str,
    token: &'static str,
    sim: Simulator,
}

async fn org(id: &'static str, token: &'static str, events: usize, seed: u64) -> Org {
    let sim = Simulator::start(org_sim_config(token, events, seed))
        .await
        .unwrap();
    Org { id, token, sim }
}

impl Org {
    fn secret(&self) -> String {
        org_ssws_secret(&self.sim, self.token)
    }

    fn event_ids(&self) -> BTreeSet<String> {
        self.sim
            .events()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_string())
            .collect()
    }
}

async fn tagged_secret(aws: &aws_config::SdkConfig, org: &Org) {
    aws_sdk_secretsmanager::Client::new(aws)
        .create_secret()
        .name(format!("okta-ingest/{}", org.id))
        .secret_string(org.secret())
        .tags(Tag::builder().key("connector_id").value(org.id).build())
        .send()
        .await
        .unwrap();
}

fn settings(role: Option<&str>) -> Settings {
    let mut vars = vec![("CURSOR_TABLE", TABLE), ("EVENT_STREAM", STREAM)];
    if let Some(role) = role {
        vars.push(("CONNECTOR_ACCESS_ROLE_ARN", role));
    }
    lambda_settings(&vars)
}

fn poll(id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    context.deadline =
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64 + 60_000;
    LambdaEvent::new(json!({"connector_id": id, "action": "poll"}), context)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_connectors_polled_concurrently_never_mix_events_secrets_or_tokens() {
    let moto = MotoServer::start_serialized();
    let aws = moto.sdk_config().await;
    create_cursor_table(&aws, TABLE).await;
    create_stream(&aws, STREAM, 2).await;
    let acme = org("acme", "00acme-token-aaaaaaaaaaaaaaaaaaaa", 1500, 7).await;
    let globex = org("globex", "00globex-token-bbbbbbbbbbbbbbbbbb", 900, 8).await;
    tagged_secret(&aws, &acme).await;
    tagged_secret(&aws, &globex).await;
    let settings = settings(Some(ROLE));
    let lambda = connector(&settings, &aws);

    for round in 0..2 {
        if round == 1 {
            acme.sim.append_events(120);
            globex.sim.append_events(80);
        }
        let (a, g) = tokio::join!(
            handle(&lambda, &settings, poll("acme")),
            handle(&lambda, &settings, poll("globex"))
        );
        let (a, g) = (a.unwrap(), g.unwrap());
        assert_eq!(
            (a["outcome"].as_str(), g["outcome"].as_str()),
            (Some("ok"), Some("ok"))
        );
        assert_eq!(a["connector_id"], "acme");
        assert_eq!(g["connector_id"], "globex");
    }

    // Every record is its own connector's, carrying its connector id and org, and nothing is missing.
    let records = read_all_records(&aws, STREAM).await;
    let mut delivered: HashMap<String, BTreeSet<String>> = HashMap::new();
    for record in &records {
        let event: Value = serde_json::from_slice(&record.data).unwrap();
        let connector = event["connector_id"].as_str().unwrap().to_string();
        assert_eq!(event["org"], "127.0.0.1", "{event}");
        delivered
            .entry(connector)
            .or_default()
            .insert(event["event_id"].as_str().unwrap().to_string());
    }
    let (acme_ids, globex_ids) = (acme.event_ids(), globex.event_ids());
    assert!(acme_ids.is_disjoint(&globex_ids));
    let acme_delivered = &delivered["acme"];
    let globex_delivered = &delivered["globex"];
    assert!(!acme_delivered.is_empty() && !globex_delivered.is_empty());
    assert!(
        acme_delivered.is_subset(&acme_ids),
        "acme got another org's events"
    );
    assert!(
        globex_delivered.is_subset(&globex_ids),
        "globex got another org's events"
    );
    assert_eq!(delivered.len(), 2, "{:?}", delivered.keys());

    // Each org only ever saw its own token: a mixed-up secret or token would have been refused (401).
    for org in [&acme, &globex] {
        let requests = org.sim.requests();
        assert!(!requests.is_empty());
        for request in requests {
            assert_eq!(request.status, 200, "{} saw {request:?}", org.id);
            assert_eq!(request.auth_scheme.as_deref(), Some("SSWS"));
        }
    }
}

async fn caller_arn(access: &ScopedAccess, id: &str) -> String {
    // The connector's own clients' credentials, presented to STS, name the session they belong to.
    let clients = access.clients(id).await;
    aws_sdk_sts::Client::new(&clients.config)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn each_connector_gets_its_own_tagged_session_cached_up_to_the_bound() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let globex = org("globex", "00globex-token-bbbbbbbbbbbbbbbbbb", 10, 8).await;
    tagged_secret(&aws, &globex).await;
    let access = ScopedAccess::new(
        aws.clone(),
        Some(ROLE.to_string()),
        "okta-ingest/{connector_id}".into(),
        TABLE.into(),
        NonZeroUsize::new(2).unwrap(),
    );
    assert!(access.is_scoped());
    let acme_arn = caller_arn(&access, "acme").await;
    assert!(acme_arn.ends_with("/okta-ingest-acme"), "{acme_arn}");
    let globex_arn = caller_arn(&access, "globex").await;
    assert!(globex_arn.ends_with("/okta-ingest-globex"), "{globex_arn}");
    // Cached: the same clients come back while they are among the two most recently used.
    let first = access.clients("acme").await;
    assert!(std::sync::Arc::ptr_eq(
        &first,
        &access.clients("acme").await
    ));
    access.clients("initech").await;
    assert_eq!(access.cached_connectors(), 2, "bounded");
    // globex was least recently used and is rebuilt on its next use, with a new session.
    assert_eq!(
        access.fetch("globex").await.unwrap().expose(),
        globex.secret()
    );
    // ... which evicted acme, now the least recently used: acme gets fresh clients.
    assert_eq!(access.cached_connectors(), 2);
    assert!(!std::sync::Arc::ptr_eq(
        &first,
        &access.clients("acme").await
    ));
}

#[tokio::test]
async fn without_a_role_every_connector_shares_the_functions_own_clients() {
    let moto = MotoServer::start();
    let aws = moto.sdk_config().await;
    let access = ScopedAccess::new(
        aws,
        None,
        "okta-ingest/{connector_id}".into(),
        TABLE.into(),
        NonZeroUsize::new(4).unwrap(),
    );
    assert!(!access.is_scoped());
    let a = access.clients("acme").await;
    let b = access.clients("globex").await;
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert_eq!(access.cached_connectors(), 0);
}

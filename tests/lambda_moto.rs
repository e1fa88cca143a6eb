//! The Lambda handler end to end: Secrets Manager, DynamoDB and Kinesis in moto, Okta in the
//! simulator, invoked with the payloads the Lambda runtime would deliver.
#![cfg(feature = "testkit")]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::lambda::{connector, handle, LambdaConnector};
use okta_ingest::settings::Settings;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, put_secret, read_all_records, MotoServer,
};
use okta_ingest::testkit::rig::{lambda_settings, sim_config, ssws_secret};
use okta_ingest::testkit::schema::assert_valid_total_event;
use okta_sim::Simulator;
use serde_json::{json, Value};

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";

struct Stack {
    _moto: MotoServer,
    aws: aws_config::SdkConfig,
    sim: Simulator,
    settings: Settings,
    connector: LambdaConnector,
}

async fn stack(events: usize) -> Stack {
    let moto = MotoServer::start_serialized();
    let aws = moto.sdk_config().await;
    create_cursor_table(&aws, TABLE).await;
    create_stream(&aws, STREAM, 2).await;
    let sim = Simulator::start(sim_config(events, 21)).await.unwrap();
    put_secret(&aws, "okta-ingest/acme", &ssws_secret(&sim)).await;
    let settings = lambda_settings(&[
        ("CURSOR_TABLE", TABLE),
        ("EVENT_STREAM", STREAM),
        ("DEFAULT_CONNECTOR_ID", "acme"),
    ]);
    let connector = connector(&settings, &aws);
    Stack {
        _moto: moto,
        aws,
        sim,
        settings,
        connector,
    }
}

fn event(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = uuid::Uuid::new_v4().to_string();
    let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    context.deadline = now_ms + 60_000;
    LambdaEvent::new(payload, context)
}

impl Stack {
    async fn invoke(&self, payload: Value) -> Result<Value, lambda_runtime::Diagnostic> {
        handle(&self.connector, &self.settings, event(payload)).await
    }

    async fn cursor_item(
        &self,
    ) -> Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.aws)
            .get_item()
            .table_name(TABLE)
            .key(
                "connector_id",
                aws_sdk_dynamodb::types::AttributeValue::S("acme".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }
}

#[tokio::test]
async fn scheduled_polls_land_every_human_event_in_kinesis_exactly_once() {
    let stack = stack(2500).await;
    let first = stack
        .invoke(json!({"connector_id": "acme", "action": "poll"}))
        .await
        .unwrap();
    assert_eq!(first["outcome"], "ok", "{first}");
    assert_eq!(first["drain"]["caught_up"], true);
    stack.sim.append_events(400);
    stack.sim.append_late_events(25, Duration::from_secs(7200));
    let envelope = json!({"version": "0", "id": "e", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-26T06:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {}});
    let second = stack.invoke(envelope).await.unwrap();
    assert_eq!(second["drain"]["fetched"], 425, "{second}");

    let records = read_all_records(&stack.aws, STREAM).await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for record in &records {
        let event: Value = serde_json::from_slice(&record.data).unwrap();
        assert_valid_total_event(&event);
        // Per-person ordering: a resolved subject's records are keyed by its Okta user id.
        if event["subject_resolved"] == true {
            assert_eq!(
                record.partition_key,
                event["subject"]["id"].as_str().unwrap()
            );
        }
        *seen
            .entry(event["event_id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let published = first["drain"]["published"].as_u64().unwrap()
        + second["drain"]["published"].as_u64().unwrap();
    assert_eq!(records.len() as u64, published);
    assert!(seen.values().all(|&n| n == 1), "no duplicates");
    let item = stack.cursor_item().await.unwrap();
    assert!(item["cursor"].as_s().unwrap().contains("after="));
    assert!(!item.contains_key("lease_owner"), "lease released");
}

#[tokio::test]
async fn overlapping_invocations_never_both_drain() {
    let stack = stack(3000).await;
    stack
        .sim
        .inject(okta_sim::Fault::Delay(Duration::from_millis(500)), 2);
    let payload = json!({"connector_id": "acme", "action": "poll"});
    let (a, b) = tokio::join!(stack.invoke(payload.clone()), stack.invoke(payload));
    let mut outcomes = vec![a.unwrap()["outcome"].clone(), b.unwrap()["outcome"].clone()];
    outcomes.sort_by_key(|v| v.to_string());
    assert_eq!(outcomes, vec![json!("lease_held"), json!("ok")]);
}

#[tokio::test]
async fn bad_input_and_bad_secrets_are_clear_errors_with_the_cursor_untouched() {
    let stack = stack(50).await;
    let err = stack
        .invoke(json!({"connector_id": "acme", "action": "explode"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInvocation");
    assert!(err.error_message.contains("unknown action"));
    assert!(stack.cursor_item().await.is_none(), "nothing touched");

    let err = stack
        .invoke(json!({"connector_id": "nobody", "action": "poll"}))
        .await
        .unwrap_err();
    assert!(
        err.error_message.contains("okta-ingest/nobody"),
        "{}",
        err.error_message
    );

    put_secret(
        &stack.aws,
        "okta-ingest/broken",
        r#"{"org_url": "https://acme.okta.com"}"#,
    )
    .await;
    let err = stack
        .invoke(json!({"connector_id": "broken", "action": "poll"}))
        .await
        .unwrap_err();
    assert!(err.error_message.contains("auth"), "{}", err.error_message);
    assert!(stack.sim.requests().is_empty());
}

#[tokio::test]
async fn disable_and_resume_through_the_handler() {
    let stack = stack(100).await;
    let disabled = stack
        .invoke(json!({"connector_id": "acme", "action": "disable", "reason": "audit"}))
        .await
        .unwrap();
    assert_eq!(disabled["state"]["paused"], true);
    let paused = stack
        .invoke(json!({"connector_id": "acme", "action": "poll"}))
        .await
        .unwrap();
    assert_eq!(paused["outcome"], "paused");
    assert!(
        stack.sim.requests().is_empty(),
        "a paused connector calls Okta no more"
    );
    stack
        .invoke(json!({"connector_id": "acme", "action": "resume"}))
        .await
        .unwrap();
    let polled = stack
        .invoke(json!({"connector_id": "acme", "action": "poll"}))
        .await
        .unwrap();
    assert_eq!(polled["drain"]["fetched"], 100);
}

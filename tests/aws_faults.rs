//! The Lambda connector against moto through a fault-injecting proxy: AWS answers that are lost
//! after the write was applied, and AWS calls that never answer.
#![cfg(feature = "testkit")]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::lambda::{connector, handle, LambdaConnector};
use okta_ingest::settings::Settings;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, put_secret, read_all_records, MotoServer,
};
use okta_ingest::testkit::proxy::{FaultProxy, ProxyFault};
use okta_ingest::testkit::rig::{sim_config, ssws_secret, test_settings};
use okta_sim::Simulator;
use serde_json::{json, Value};

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";
const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";

struct Stack {
    _moto: MotoServer,
    proxy: FaultProxy,
    /// Straight to moto, to inspect what was stored.
    direct: aws_config::SdkConfig,
    sim: Simulator,
    settings: Settings,
    connector: LambdaConnector,
}

async fn stack(events: usize) -> Stack {
    let moto = MotoServer::start_serialized();
    let direct = moto.sdk_config().await;
    create_cursor_table(&direct, TABLE).await;
    create_stream(&direct, STREAM, 1).await;
    let sim = Simulator::start(sim_config(events, 33)).await.unwrap();
    put_secret(&direct, "okta-ingest/acme", &ssws_secret(&sim)).await;
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let through_proxy = direct.to_builder().endpoint_url(proxy.endpoint()).build();
    let vars: HashMap<String, String> = [
        ("CURSOR_TABLE", TABLE),
        ("EVENT_STREAM", STREAM),
        ("OKTA_ALLOW_INSECURE_LOOPBACK", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut settings = Settings::from_vars(&vars).unwrap();
    settings.run.okta = test_settings().okta;
    let connector = connector(&settings, &through_proxy);
    Stack {
        _moto: moto,
        proxy,
        direct,
        sim,
        settings,
        connector,
    }
}

impl Stack {
    /// A poll with `budget` before the runtime deadline.
    async fn poll(&self, budget: Duration) -> Value {
        let mut context = Context::default();
        context.request_id = uuid::Uuid::new_v4().to_string();
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
        context.deadline = now_ms + budget.as_millis() as u64;
        let payload = json!({"connector_id": "acme", "action": "poll"});
        handle(
            &self.connector,
            &self.settings,
            LambdaEvent::new(payload, context),
        )
        .await
        .unwrap_or_else(|diagnostic| json!({"diagnostic": format!("{diagnostic:?}")}))
    }

    async fn cursor_item(&self) -> HashMap<String, AttributeValue> {
        aws_sdk_dynamodb::Client::new(&self.direct)
            .get_item()
            .table_name(TABLE)
            .key("connector_id", AttributeValue::S("acme".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("the cursor item exists")
    }

    /// Every event id in the stream appears once.
    async fn assert_no_duplicates(&self) -> usize {
        let records = read_all_records(&self.direct, STREAM).await;
        let ids: HashSet<String> = records
            .iter()
            .map(|r| {
                let event: Value = serde_json::from_slice(&r.data).unwrap();
                event["event_id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), records.len(), "no event delivered twice");
        records.len()
    }
}

const BUDGET: Duration = Duration::from_secs(60);

#[tokio::test]
async fn every_lost_dynamodb_answer_is_resolved_and_the_next_poll_runs_at_once() {
    // A clean poll of two pages: claim, one checkpoint per page, release.
    let baseline = stack(1500).await;
    let clean = baseline.poll(BUDGET).await;
    assert_eq!(clean["outcome"], "ok", "{clean}");
    let writes = baseline.proxy.seen(UPDATE_ITEM);
    assert!(writes >= 4, "claim, two checkpoints and release: {writes}");
    drop(baseline);

    for lost in 0..writes {
        let stack = stack(1500).await;
        stack
            .proxy
            .inject(UPDATE_ITEM, ProxyFault::LoseAnswer, lost as u32, 1);
        let first = stack.poll(BUDGET).await;
        assert_eq!(
            stack.proxy.applied().len(),
            1,
            "write #{lost}: the answer was lost"
        );
        assert_eq!(first["outcome"], "ok", "write #{lost}: {first}");
        let item = stack.cursor_item().await;
        assert!(
            !item.contains_key("lease_owner"),
            "write #{lost}: lease released: {item:?}"
        );
        assert_eq!(item["consecutive_failures"].as_n().unwrap(), "0");

        stack.sim.append_events(10);
        let next = stack.poll(BUDGET).await;
        assert_eq!(
            next["outcome"], "ok",
            "write #{lost}: the next poll runs: {next}"
        );
        assert_eq!(next["drain"]["fetched"], 10, "write #{lost}: {next}");
        let published = first["drain"]["published"].as_u64().unwrap()
            + next["drain"]["published"].as_u64().unwrap();
        assert_eq!(stack.assert_no_duplicates().await as u64, published);
    }
}

/// A budget whose work part (budget less the 20 s safety margin) fits two pages.
const SHORT_BUDGET: Duration = Duration::from_secs(30);

/// Polls with `SHORT_BUDGET` and checks the answer came before the runtime deadline; returns
/// the deadline as epoch milliseconds.
async fn poll_answers_in_time(stack: &Stack) -> u64 {
    let started = std::time::Instant::now();
    let deadline_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
        + SHORT_BUDGET.as_millis() as u64;
    // Past the deadline the runtime would have killed the invocation: stop waiting there.
    let answer = tokio::time::timeout(SHORT_BUDGET, stack.poll(SHORT_BUDGET))
        .await
        .expect("the invocation answers before the runtime deadline");
    let took = started.elapsed();
    assert!(
        took < SHORT_BUDGET - Duration::from_secs(2),
        "answered after {took:?}: {answer}"
    );
    deadline_ms
}

#[tokio::test]
async fn a_stalled_claim_ends_the_invocation_before_its_deadline() {
    let stack = stack(500).await;
    stack.proxy.stall_all(UPDATE_ITEM);
    poll_answers_in_time(&stack).await;
    assert!(!stack.proxy.applied().is_empty(), "the claim stalled");
    assert_eq!(stack.assert_no_duplicates().await, 0, "nothing published");
}

#[tokio::test]
async fn a_stalled_checkpoint_keeps_the_cursor_at_the_last_acknowledged_page() {
    let stack = stack(1500).await;
    // The claim and the first page's checkpoint pass; everything written after stalls.
    stack
        .proxy
        .inject(UPDATE_ITEM, ProxyFault::Stall, 2, u32::MAX);
    let deadline_ms = poll_answers_in_time(&stack).await;
    let item = stack.cursor_item().await;
    assert_eq!(
        item["version"].as_n().unwrap(),
        "2",
        "claim and one checkpoint: {item:?}"
    );
    let first_page: u64 = item["delivered_total"].as_n().unwrap().parse().unwrap();
    let published = stack.assert_no_duplicates().await as u64;
    assert!(
        first_page > 0 && first_page < published,
        "the second page was published, its checkpoint stalled: {first_page} of {published}"
    );
    // The release stalled too: the lease expires by itself, at most 30 s after the deadline.
    let expires: u64 = item["lease_expires_at"].as_n().unwrap().parse().unwrap();
    assert!(
        expires <= deadline_ms + 31_000,
        "lease until {expires}, deadline {deadline_ms}"
    );
}

#[tokio::test]
async fn a_stalled_secret_read_ends_the_invocation_and_releases_the_lease() {
    let stack = stack(500).await;
    stack.proxy.stall_all("secretsmanager.GetSecretValue");
    poll_answers_in_time(&stack).await;
    assert!(!stack.proxy.applied().is_empty(), "the secret read stalled");
    let item = stack.cursor_item().await;
    assert!(
        !item.contains_key("lease_owner"),
        "lease released: {item:?}"
    );
    assert!(!item.contains_key("cursor"), "{item:?}");
    assert_eq!(item["consecutive_failures"].as_n().unwrap(), "1");
}

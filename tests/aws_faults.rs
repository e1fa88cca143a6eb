//! The Lambda connector against moto through a fault-injecting proxy: AWS answers that are lost
//! after the write was applied, and AWS calls that never answer.
#![cfg(feature = "testkit")]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_runtime::{Context, LambdaEvent};
use okta_ingest::deadletter::s3::client as s3_client;
use okta_ingest::lambda::{connector, handle, LambdaConnector};
use okta_ingest::okta::memory::sign_in;
use okta_ingest::settings::Settings;
use okta_ingest::testkit::keys::EcKey;
use okta_ingest::testkit::moto::{
    create_cursor_table, create_stream, put_secret, read_all_records, MotoServer,
};
use okta_ingest::testkit::proxy::{FaultProxy, ProxyFault};
use okta_ingest::testkit::rig::{lambda_settings, sim_config, ssws_secret};
use okta_sim::{ClientRegistration, Fault, Simulator};
use serde_json::{json, Value};

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "okta-ingest-events";
const BUCKET: &str = "okta-ingest-dead-letters";
const ROLE: &str = "arn:aws:iam::123456789012:role/okta-ingest-connector-access";
const CLIENT_ID: &str = "0oa-ingest";
const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";
const GET_ITEM: &str = "DynamoDB_20120810.GetItem";
const PUT_RECORDS: &str = "Kinesis_20131202.PutRecords";
/// Every request signed for STS (the credential scope names the service).
const STS: &str = "/sts/aws4_request";

/// What a stack deploys beyond the table, the stream and the secret.
#[derive(Default)]
struct Options {
    /// A dead-letter bucket (`DEAD_LETTER_BUCKET`).
    dead_letters: bool,
    /// Fleet mode: each connector's calls under an assumed role (`CONNECTOR_ACCESS_ROLE_ARN`).
    scoped: bool,
    /// OAuth 2.0 with a private key instead of an SSWS token.
    oauth: bool,
    /// In place of the default 20 s kept for the last checkpoint and the release.
    safety_margin: Option<Duration>,
    /// In place of the test settings' 5 s per Okta request.
    okta_request_timeout: Option<Duration>,
}

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
    stack_with(events, |_| {}).await
}

/// A stack whose `Options` `deploy` sets.
async fn stack_with(events: usize, deploy: impl FnOnce(&mut Options)) -> Stack {
    let mut options = Options::default();
    deploy(&mut options);
    let moto = MotoServer::start_serialized();
    let direct = moto.sdk_config().await;
    create_cursor_table(&direct, TABLE).await;
    create_stream(&direct, STREAM, 1).await;
    let mut sim_config = sim_config(events, 33);
    let key = options.oauth.then(|| EcKey::generate("k1"));
    if let Some(key) = &key {
        sim_config.clients = vec![ClientRegistration {
            client_id: CLIENT_ID.into(),
            public_jwks: vec![key.public_jwk()],
            scopes: vec!["okta.logs.read".into()],
            require_dpop: false,
            active: true,
        }];
    }
    let sim = Simulator::start(sim_config).await.unwrap();
    let secret = match &key {
        Some(key) => json!({"org_url": sim.base_url(),
            "auth": {"type": "oauth2", "client_id": CLIENT_ID, "private_key": [key.private_jwk()]}})
        .to_string(),
        None => ssws_secret(&sim),
    };
    put_secret(&direct, "okta-ingest/acme", &secret).await;
    let mut vars = vec![("CURSOR_TABLE", TABLE), ("EVENT_STREAM", STREAM)];
    if options.dead_letters {
        s3_client(&direct)
            .create_bucket()
            .bucket(BUCKET)
            .send()
            .await
            .unwrap();
        vars.push(("DEAD_LETTER_BUCKET", BUCKET));
    }
    if options.scoped {
        vars.push(("CONNECTOR_ACCESS_ROLE_ARN", ROLE));
    }
    let proxy = FaultProxy::start(&moto.endpoint()).await;
    let through_proxy = direct.to_builder().endpoint_url(proxy.endpoint()).build();
    let mut settings = lambda_settings(&vars);
    if let Some(margin) = options.safety_margin {
        settings.run.safety_margin = margin;
    }
    if let Some(timeout) = options.okta_request_timeout {
        settings.run.okta.request_timeout = timeout;
    }
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

    /// Every cursor write after the claim and the first page's checkpoint stalls.
    fn stall_writes_after_the_first_checkpoint(&self) {
        self.proxy
            .inject(UPDATE_ITEM, ProxyFault::Stall, 2, u32::MAX);
    }

    async fn left(&self) -> Left {
        let item = self.cursor_item().await;
        Left {
            delivered: number(&item, "delivered_total"),
            in_stream: self.assert_no_duplicates().await as u64,
            item,
        }
    }

    async fn cursor_item(&self) -> HashMap<String, AttributeValue> {
        self.stored_item().await.expect("the cursor item exists")
    }

    async fn stored_item(&self) -> Option<HashMap<String, AttributeValue>> {
        aws_sdk_dynamodb::Client::new(&self.direct)
            .get_item()
            .table_name(TABLE)
            .key("connector_id", AttributeValue::S("acme".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
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
    let (deadline_ms, answer) = poll_answers_within(stack, SHORT_BUDGET).await;
    let took = started.elapsed();
    assert!(
        took < SHORT_BUDGET - Duration::from_secs(2),
        "answered after {took:?}: {answer}"
    );
    deadline_ms
}

/// Polls with `SHORT_BUDGET` while `stall` holds requests back, checks the answer came in time
/// and that the invocation met the stall (`what` names it); returns the deadline as epoch
/// milliseconds.
async fn poll_while_stalled(stack: &Stack, stall: impl FnOnce(&FaultProxy), what: &str) -> u64 {
    stall(&stack.proxy);
    let deadline_ms = poll_answers_in_time(stack).await;
    assert!(!stack.proxy.applied().is_empty(), "the {what} stalled");
    deadline_ms
}

/// Polls with `budget` and checks the answer came before the runtime deadline; returns the
/// deadline as epoch milliseconds, and the answer.
async fn poll_answers_within(stack: &Stack, budget: Duration) -> (u64, Value) {
    let deadline_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64
        + budget.as_millis() as u64;
    // Past the deadline the runtime would have killed the invocation: stop waiting there.
    let answer = tokio::time::timeout(budget, stack.poll(budget))
        .await
        .expect("the invocation answers before the runtime deadline");
    (deadline_ms, answer)
}

#[tokio::test]
async fn a_stalled_claim_ends_the_invocation_before_its_deadline() {
    let stack = stack(500).await;
    poll_while_stalled(&stack, |proxy| proxy.stall_all(UPDATE_ITEM), "claim").await;
    assert_eq!(stack.assert_no_duplicates().await, 0, "nothing published");
}

#[tokio::test]
async fn a_stalled_checkpoint_keeps_the_cursor_at_the_last_acknowledged_page() {
    let stack = stack(1500).await;
    stack.stall_writes_after_the_first_checkpoint();
    let deadline_ms = poll_answers_in_time(&stack).await;
    let left = stack.left().await;
    left.assert_claim_and_one_checkpoint();
    left.assert_cursor_behind_the_stream("the second page was published, its checkpoint stalled");
    // The release stalled too.
    left.assert_lease_expires_by_itself(deadline_ms);
}

#[tokio::test]
async fn a_stalled_secret_read_ends_the_invocation_and_releases_the_lease() {
    let stack = stack(500).await;
    let secret_read = |proxy: &FaultProxy| proxy.stall_all("secretsmanager.GetSecretValue");
    poll_while_stalled(&stack, secret_read, "secret read").await;
    let item = stack.cursor_item().await;
    assert!(
        !item.contains_key("lease_owner"),
        "lease released: {item:?}"
    );
    assert!(!item.contains_key("cursor"), "{item:?}");
    assert_eq!(item["consecutive_failures"].as_n().unwrap(), "1");
}

/// Okta answers the first page, then holds every later page back for an hour.
fn stall_okta_after_the_first_page(sim: &Simulator) {
    sim.inject(Fault::Delay(Duration::ZERO), 1);
    sim.inject(Fault::Delay(Duration::from_secs(3600)), u32::MAX);
}

fn lease_released(item: &HashMap<String, AttributeValue>) -> bool {
    !item.contains_key("lease_owner")
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item[name].as_n().unwrap().parse().unwrap()
}

/// What a poll cut short by a stall left behind.
struct Left {
    item: HashMap<String, AttributeValue>,
    /// The events the cursor's checkpoints count (`delivered_total`).
    delivered: u64,
    /// The events in the stream, none of them twice.
    in_stream: u64,
}

impl Left {
    /// The claim and the first page's checkpoint landed, nothing written after.
    fn assert_claim_and_one_checkpoint(&self) {
        let item = &self.item;
        assert_eq!(
            item["version"].as_n().unwrap(),
            "2",
            "claim and one checkpoint: {item:?}"
        );
    }

    /// A later page was published but its checkpoint never landed.
    fn assert_cursor_behind_the_stream(&self, why: &str) {
        let Left {
            delivered,
            in_stream,
            ..
        } = self;
        assert!(
            *delivered > 0 && delivered < in_stream,
            "{why}: {delivered} of {in_stream}"
        );
    }

    /// The invocation stopped after the acknowledged pages, released the lease and counts as
    /// progress: what the stream holds is what the cursor covers.
    fn assert_released_at_the_last_acknowledged_page(&self) {
        let item = &self.item;
        assert!(lease_released(item), "{item:?}");
        assert!(self.delivered > 0, "{item:?}");
        assert_eq!(
            self.in_stream, self.delivered,
            "what the stream holds is what the cursor covers"
        );
        assert_eq!(number(item, "consecutive_failures"), 0, "progress was made");
    }

    /// The lease the stalled release kept expires by itself, at most 30 s after the deadline.
    fn assert_lease_expires_by_itself(&self, deadline_ms: u64) {
        let expires = number(&self.item, "lease_expires_at");
        assert!(
            expires <= deadline_ms + 31_000,
            "lease until {expires}, deadline {deadline_ms}: {:?}",
            self.item
        );
    }
}

#[tokio::test]
async fn a_stalled_put_records_attempt_is_cut_and_the_records_sent_again() {
    let stack = stack(500).await;
    stack.proxy.inject(PUT_RECORDS, ProxyFault::Stall, 0, 1);
    let answer = stack.poll(BUDGET).await;
    assert_eq!(stack.proxy.applied().len(), 1, "one attempt stalled");
    assert_eq!(answer["outcome"], "ok", "{answer}");
    assert_eq!(answer["drain"]["caught_up"], true, "{answer}");
    let published = answer["drain"]["published"].as_u64().unwrap();
    assert!(published > 0, "{answer}");
    assert_eq!(stack.assert_no_duplicates().await as u64, published);
    let item = stack.cursor_item().await;
    assert_eq!(number(&item, "delivered_total"), published);
}

#[tokio::test]
async fn a_stalled_stream_keeps_the_cursor_at_the_last_acknowledged_page() {
    let stack = stack(1500).await;
    // Kinesis stops answering once the first page's checkpoint was written.
    let stream = |proxy: &FaultProxy| proxy.stall_after(UPDATE_ITEM, 2, PUT_RECORDS);
    poll_while_stalled(&stack, stream, "stream").await;
    let left = stack.left().await;
    assert!(left.item.contains_key("cursor"), "{:?}", left.item);
    left.assert_released_at_the_last_acknowledged_page();
}

#[tokio::test]
async fn a_stalled_dead_letter_store_holds_the_cursor_before_the_poison_page() {
    let stack = stack_with(1000, |options| options.dead_letters = true).await;
    let mut poison = sign_in(
        &uuid::Uuid::new_v4().to_string(),
        "dana",
        time::OffsetDateTime::now_utc(),
    );
    poison["displayMessage"] = "x".repeat(1_100_000).into();
    let poison_id = poison["uuid"].as_str().unwrap().to_owned();
    stack.sim.append_raw(vec![poison]);
    stack.sim.append_events(5);
    let put_object = format!("PUT /{BUCKET}/");
    let dead_letter = |proxy: &FaultProxy| proxy.stall_all(&put_object);
    poll_while_stalled(&stack, dead_letter, "dead letter").await;
    let left = stack.left().await;
    assert!(lease_released(&left.item), "{:?}", left.item);
    left.assert_cursor_behind_the_stream(
        "the poison page's other events were published, its cursor not moved",
    );

    // The store answers again: the page is delivered and the poison event kept.
    stack.proxy.clear();
    let next = stack.poll(BUDGET).await;
    assert_eq!(next["outcome"], "ok", "{next}");
    assert_eq!(next["drain"]["dead_lettered"], 1, "{next}");
    let kept = s3_client(&stack.direct)
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = kept.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [format!("acme/{poison_id}.json")]);
}

#[tokio::test]
async fn a_stalled_sts_fails_the_invocation_in_time_and_the_next_poll_runs() {
    let stack = stack_with(200, |options| options.scoped = true).await;
    poll_while_stalled(&stack, |proxy| proxy.stall_all(STS), "role session").await;
    assert!(
        stack.stored_item().await.is_none(),
        "nothing claimed without the connector's credentials"
    );

    stack.proxy.clear();
    let next = stack.poll(BUDGET).await;
    assert_eq!(next["outcome"], "ok", "{next}");
    assert!(next["drain"]["published"].as_u64().unwrap() > 0, "{next}");
}

#[tokio::test]
async fn a_stalled_okta_api_keeps_the_cursor_at_the_last_acknowledged_page() {
    let stack = stack(1500).await;
    stall_okta_after_the_first_page(&stack.sim);
    poll_answers_in_time(&stack).await;
    stack
        .left()
        .await
        .assert_released_at_the_last_acknowledged_page();
}

#[tokio::test]
async fn a_stalled_token_endpoint_fails_the_invocation_in_time_and_releases_the_lease() {
    let stack = stack_with(200, |options| options.oauth = true).await;
    stack.sim.inject(
        Fault::TokenEndpointDelay(Duration::from_secs(3600)),
        u32::MAX,
    );
    poll_answers_in_time(&stack).await;
    let item = stack.cursor_item().await;
    assert!(lease_released(&item), "{item:?}");
    assert!(!item.contains_key("cursor"), "{item:?}");
    assert_eq!(number(&item, "consecutive_failures"), 1);
    assert_eq!(stack.assert_no_duplicates().await, 0);

    stack.sim.clear_faults();
    let next = stack.poll(BUDGET).await;
    assert_eq!(next["outcome"], "ok", "{next}");
}

#[tokio::test]
async fn a_stalled_release_after_a_drain_to_the_deadline_still_answers_in_time() {
    let stack = stack(1500).await;
    // The drain waits for Okta until the work deadline; then the release stalls: the
    // margin kept for it is enough, and the lease expires by itself.
    stall_okta_after_the_first_page(&stack.sim);
    stack.stall_writes_after_the_first_checkpoint();
    let deadline_ms = poll_answers_in_time(&stack).await;
    let left = stack.left().await;
    left.assert_claim_and_one_checkpoint();
    assert_eq!(left.in_stream, left.delivered);
    assert!(left.item.contains_key("lease_owner"), "the release stalled");
    left.assert_lease_expires_by_itself(deadline_ms);
}

#[tokio::test]
async fn a_stalled_release_is_cut_at_the_deadline_whatever_the_margin() {
    // A margin shorter than the release's own bounds (5 s and a resolving read).
    let stack = stack_with(1500, |options| {
        options.safety_margin = Some(Duration::from_secs(2))
    })
    .await;
    stall_okta_after_the_first_page(&stack.sim);
    stack.stall_writes_after_the_first_checkpoint();
    let (deadline_ms, answer) = poll_answers_within(&stack, Duration::from_secs(12)).await;
    assert!(
        answer.to_string().contains("release of cursor item acme"),
        "{answer}"
    );
    let left = stack.left().await;
    assert_eq!(left.delivered, left.in_stream);
    left.assert_lease_expires_by_itself(deadline_ms);
}

#[tokio::test]
async fn a_stalled_last_checkpoint_is_cut_at_the_deadline_whatever_the_margin() {
    // A short second page, so its publish is quick.
    let stack = stack_with(1050, |options| {
        options.safety_margin = Some(Duration::from_secs(2));
        options.okta_request_timeout = Some(Duration::from_secs(20));
    })
    .await;
    // The second page arrives after 8 s, well before the work deadline (14 s); its checkpoint
    // stalls, and so does the read that would resolve it: their own bounds (5 s each) would
    // end it past the runtime deadline (16 s).
    stack.sim.inject(Fault::Delay(Duration::ZERO), 1);
    stack.sim.inject(Fault::Delay(Duration::from_secs(8)), 1);
    stack.stall_writes_after_the_first_checkpoint();
    stack.proxy.stall_all(GET_ITEM);
    let (_, answer) = poll_answers_within(&stack, Duration::from_secs(16)).await;
    assert!(
        !stack.proxy.applied().is_empty(),
        "the checkpoint stalled: {answer}"
    );
    let left = stack.left().await;
    left.assert_claim_and_one_checkpoint();
    left.assert_cursor_behind_the_stream("the second page was published, its checkpoint cut");
}

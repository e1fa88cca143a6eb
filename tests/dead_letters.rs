//! One poison event does not stop the stream: an event the stream refuses for good is kept
//! whole in the dead-letter bucket, the rest of its page is published and the cursor moves;
//! `redrive` re-publishes it once the stream takes it. Kinesis and S3 are moto; Okta, the
//! secret and the cursor store are in-memory twins.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use okta_ingest::actions::{Connector, Outcome, Summary};
use okta_ingest::cursor::live_key;
use okta_ingest::cursor::memory::MemoryCursorStore;
use okta_ingest::cursor::CursorStore;
use okta_ingest::deadletter::s3::client as s3_client;
use okta_ingest::deadletter::s3::S3DeadLetterStore;
use okta_ingest::deadletter::{DeadLetterStore, TargetStream};
use okta_ingest::invocation::{Action, ConnectorId, Invocation};
use okta_ingest::okta::memory::{sign_in, MemoryLogSource, MemorySources};
use okta_ingest::okta::SourceFactory;
use okta_ingest::secrets::memory::MemorySecretSource;
use okta_ingest::secrets::SecretSource;
use okta_ingest::settings::RunSettings;
use okta_ingest::sink::kinesis::faults::FaultyPutRecords;
use okta_ingest::sink::kinesis::KinesisSink;
use okta_ingest::sink::EventSink;
use okta_ingest::testkit::moto::{self, MotoServer};
use time::OffsetDateTime;
use tokio::time::Instant;

const ID: &str = "acme";
const STREAM: &str = "identity-events";
const BUCKET: &str = "okta-ingest-dead-letters";

/// The ids of a stream's records, in the order the shard holds them (TOTAL `event_id`, OCSF
/// `metadata.uid`).
async fn ids_in(config: &aws_config::SdkConfig, stream: &str) -> Vec<String> {
    moto::read_all_records(config, stream)
        .await
        .into_iter()
        .map(|r| {
            let record: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
            let id = record["event_id"]
                .as_str()
                .or(record["metadata"]["uid"].as_str());
            id.unwrap().to_owned()
        })
        .collect()
}

async fn run<S, C, K, F>(connector: &Connector<S, C, K, F>, action: Action) -> Summary
where
    S: SecretSource,
    C: CursorStore,
    K: EventSink,
    F: SourceFactory,
{
    let invocation = Invocation {
        connector_id: ConnectorId::parse(ID).unwrap(),
        action,
    };
    connector
        .handle(&invocation, Instant::now() + Duration::from_secs(30))
        .await
}

/// moto with one-shard `streams` and the dead-letter bucket.
async fn moto_with(streams: &[&str]) -> (MotoServer, aws_config::SdkConfig, aws_sdk_s3::Client) {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    for stream in streams {
        moto::create_stream(&config, stream, 1).await;
    }
    let s3 = s3_client(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    (server, config, s3)
}

/// An in-memory Okta holding `events`.
fn okta_with(events: impl IntoIterator<Item = serde_json::Value>) -> Arc<MemoryLogSource> {
    let okta = Arc::new(MemoryLogSource::new());
    okta.append(events);
    okta
}

/// Sign-ins with `ids`, published a minute ago.
fn sign_ins<const N: usize>(ids: [&str; N]) -> [serde_json::Value; N] {
    let published = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    ids.map(|id| sign_in(id, "dana", published))
}

/// The connector's SSWS secret, with `extra` fields (`, "outputs": …`) appended.
fn secrets(extra: &str) -> Arc<MemorySecretSource> {
    let secrets = Arc::new(MemorySecretSource::new());
    secrets.set(
        ID,
        &format!(
            r#"{{"org_url": "https://acme.okta.com", "auth": {{"type": "ssws", "token": "00abc"}}{extra}}}"#
        ),
    );
    secrets
}

fn dead_letter_store(s3: aws_sdk_s3::Client) -> Arc<S3DeadLetterStore> {
    Arc::new(S3DeadLetterStore::new(s3, BUCKET.into(), None))
}

/// The ids of the dead letters kept for `stream`.
async fn kept(dead_letters: &S3DeadLetterStore, stream: TargetStream) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    dead_letters.list(ID, stream, deadline).await.unwrap()
}

fn message(summary: &Summary) -> &str {
    summary.message.as_deref().unwrap_or_default()
}

#[tokio::test]
async fn an_oversize_event_is_dead_lettered_and_the_page_proceeds() {
    let (_server, config, s3) = moto_with(&[STREAM]).await;

    let mut events = sign_ins(["e0", "e1", "e2"]);
    events[1]["displayMessage"] = "x".repeat(1_100_000).into();
    let okta = okta_with(events);
    let store = Arc::new(MemoryCursorStore::new());
    let dead_letters = dead_letter_store(s3);
    let connector = Connector::with_sources(
        secrets(""),
        store.clone(),
        KinesisSink::new(aws_sdk_kinesis::Client::new(&config), STREAM.into()),
        MemorySources(okta),
        RunSettings::default(),
    )
    .with_dead_letters(dead_letters.clone());

    let summary = run(&connector, Action::Poll).await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    let drain = summary.drain.as_ref().unwrap();
    assert_eq!((drain.published, drain.dead_lettered), (2, 1), "{drain:?}");
    assert!(drain.cursor_advanced);
    let item = store.snapshot(&live_key(ID)).unwrap();
    assert!(item.cursor.is_some(), "the cursor moved past the page");

    let stream = ids_in(&config, STREAM).await;
    assert_eq!(stream, ["e0", "e2"], "the others, in order");

    assert_eq!(kept(&dead_letters, TargetStream::Events).await, ["e1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let letter = dead_letters
        .get(ID, TargetStream::Events, "e1", deadline)
        .await
        .unwrap()
        .unwrap();
    assert!(letter.reason.contains("record limit"), "{}", letter.reason);
    let event: serde_json::Value = serde_json::from_str(letter.record.get()).unwrap();
    assert_eq!(event["event_id"], "e1");
    assert_eq!(
        event["display_message"].as_str().map(str::len),
        Some(1_100_000),
        "the event is kept whole"
    );

    // Still too large: redrive leaves it where it is.
    let summary = run(&connector, Action::Redrive).await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    assert!(message(&summary).contains("1 still refused"), "{summary:?}");
    assert_eq!(kept(&dead_letters, TargetStream::Events).await, ["e1"]);
}

#[tokio::test]
async fn redrive_republishes_a_dead_lettered_event_and_forgets_it() {
    let (_server, config, s3) = moto_with(&[STREAM]).await;

    let okta = okta_with(sign_ins(["e0", "e1", "e2"]));
    let api = FaultyPutRecords::new(aws_sdk_kinesis::Client::new(&config));
    api.reject_event("e1", "InvalidArgumentException");
    let dead_letters = dead_letter_store(s3);
    let connector = Connector::with_sources(
        secrets(""),
        Arc::new(MemoryCursorStore::new()),
        KinesisSink::with_api(api, STREAM.into()),
        MemorySources(okta),
        RunSettings::default(),
    )
    .with_dead_letters(dead_letters.clone());

    let poll = run(&connector, Action::Poll).await;
    assert_eq!(poll.drain.as_ref().unwrap().dead_lettered, 1, "{poll:?}");
    let redrive = run(&connector, Action::Redrive).await;
    assert_eq!(redrive.outcome, Outcome::Ok, "{redrive:?}");
    assert!(
        message(&redrive).starts_with("1 dead-lettered events re-published"),
        "{redrive:?}"
    );

    let stream = ids_in(&config, STREAM).await;
    assert_eq!(stream, ["e0", "e2", "e1"], "each once, the redriven last");
    assert!(kept(&dead_letters, TargetStream::Events).await.is_empty());
}

#[tokio::test]
async fn an_event_refused_by_the_ocsf_stream_is_kept_for_it_and_redriven_there_only() {
    const OCSF_STREAM: &str = "identity-events-ocsf";
    let (_server, config, s3) = moto_with(&[STREAM, OCSF_STREAM]).await;

    let okta = okta_with(sign_ins(["e0", "e1", "e2"]));
    let kinesis = || FaultyPutRecords::new(aws_sdk_kinesis::Client::new(&config));
    let ocsf_api = kinesis();
    ocsf_api.reject_event("e1", "InvalidArgumentException");
    let dead_letters = dead_letter_store(s3);
    let connector = Connector::with_sources(
        secrets(r#", "outputs": ["total", "ocsf"]"#),
        Arc::new(MemoryCursorStore::new()),
        KinesisSink::with_api(kinesis(), STREAM.into()),
        MemorySources(okta),
        RunSettings::default(),
    )
    .with_ocsf_sink(KinesisSink::with_api(ocsf_api, OCSF_STREAM.into()))
    .with_dead_letters(dead_letters.clone());
    let poll = run(&connector, Action::Poll).await;
    assert_eq!(poll.outcome, Outcome::Ok, "{poll:?}");
    assert_eq!(ids_in(&config, STREAM).await, ["e0", "e1", "e2"]);
    assert_eq!(ids_in(&config, OCSF_STREAM).await, ["e0", "e2"]);
    assert!(kept(&dead_letters, TargetStream::Events).await.is_empty());
    assert_eq!(kept(&dead_letters, TargetStream::Ocsf).await, ["e1"]);

    let redrive = run(&connector, Action::Redrive).await;
    assert!(
        message(&redrive).starts_with("1 dead-lettered events re-published"),
        "{redrive:?}"
    );
    assert_eq!(
        ids_in(&config, OCSF_STREAM).await,
        ["e0", "e2", "e1"],
        "back where it was refused"
    );
    assert_eq!(
        ids_in(&config, STREAM).await,
        ["e0", "e1", "e2"],
        "nothing sent twice"
    );
    assert!(kept(&dead_letters, TargetStream::Ocsf).await.is_empty());
}

//! One poison event does not stop the stream: an event the stream refuses for good is kept
//! whole in the dead-letter bucket, the rest of its page is published and the cursor moves;
//! `redrive` re-publishes it once the stream takes it. Kinesis and S3 are moto; Okta, the
//! secret and the cursor store are in-memory twins.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use okta_ingest::actions::{Connector, Outcome};
use okta_ingest::cursor::live_key;
use okta_ingest::cursor::memory::MemoryCursorStore;
use okta_ingest::deadletter::s3::client as s3_client;
use okta_ingest::deadletter::s3::S3DeadLetterStore;
use okta_ingest::deadletter::DeadLetterStore;
use okta_ingest::invocation::{Action, ConnectorId, Invocation};
use okta_ingest::okta::memory::{sign_in, MemoryLogSource, MemorySources};
use okta_ingest::secrets::memory::MemorySecretSource;
use okta_ingest::settings::RunSettings;
use okta_ingest::sink::kinesis::faults::FaultyPutRecords;
use okta_ingest::sink::kinesis::KinesisSink;
use okta_ingest::testkit::moto::{self, MotoServer};
use time::OffsetDateTime;
use tokio::time::Instant;

const ID: &str = "acme";
const STREAM: &str = "identity-events";
const BUCKET: &str = "okta-ingest-dead-letters";

#[tokio::test]
async fn an_oversize_event_is_dead_lettered_and_the_page_proceeds() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    moto::create_stream(&config, STREAM, 1).await;
    let s3 = s3_client(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    let okta = Arc::new(MemoryLogSource::new());
    let published = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let mut poison = sign_in("e1", "dana", published);
    poison["displayMessage"] = "x".repeat(1_100_000).into();
    okta.append([
        sign_in("e0", "dana", published),
        poison,
        sign_in("e2", "dana", published),
    ]);
    let secrets = Arc::new(MemorySecretSource::new());
    secrets.set(
        ID,
        r#"{"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"}}"#,
    );
    let store = Arc::new(MemoryCursorStore::new());
    let dead_letters = Arc::new(S3DeadLetterStore::new(s3, BUCKET.into(), None));
    let connector = Connector::with_sources(
        secrets,
        store.clone(),
        KinesisSink::new(aws_sdk_kinesis::Client::new(&config), STREAM.into()),
        MemorySources(okta),
        RunSettings::default(),
    )
    .with_dead_letters(dead_letters.clone());

    let invocation = Invocation {
        connector_id: ConnectorId::parse(ID).unwrap(),
        action: Action::Poll,
    };
    let summary = connector
        .handle(&invocation, Instant::now() + Duration::from_secs(30))
        .await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    let drain = summary.drain.as_ref().unwrap();
    assert_eq!((drain.published, drain.dead_lettered), (2, 1), "{drain:?}");
    assert!(drain.cursor_advanced);
    let item = store.snapshot(&live_key(ID)).unwrap();
    assert!(item.cursor.is_some(), "the cursor moved past the page");

    let stream: Vec<String> = moto::read_all_records(&config, STREAM)
        .await
        .into_iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
            event["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(stream, ["e0", "e2"], "the others, in order");

    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(dead_letters.list(ID, deadline).await.unwrap(), ["e1"]);
    let letter = dead_letters.get(ID, "e1", deadline).await.unwrap().unwrap();
    assert!(letter.reason.contains("record limit"), "{}", letter.reason);
    let event: serde_json::Value = serde_json::from_str(letter.record.get()).unwrap();
    assert_eq!(event["event_id"], "e1");
    assert_eq!(
        event["display_message"].as_str().map(str::len),
        Some(1_100_000),
        "the event is kept whole"
    );

    // Still too large: redrive leaves it where it is.
    let redrive = Invocation {
        connector_id: ConnectorId::parse(ID).unwrap(),
        action: Action::Redrive,
    };
    let summary = connector
        .handle(&redrive, Instant::now() + Duration::from_secs(30))
        .await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    assert!(
        summary
            .message
            .as_deref()
            .unwrap()
            .contains("1 still refused"),
        "{summary:?}"
    );
    assert_eq!(dead_letters.list(ID, deadline).await.unwrap(), ["e1"]);
}

#[tokio::test]
async fn redrive_republishes_a_dead_lettered_event_and_forgets_it() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    moto::create_stream(&config, STREAM, 1).await;
    let s3 = s3_client(&config);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    let okta = Arc::new(MemoryLogSource::new());
    let published = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    okta.append(["e0", "e1", "e2"].map(|id| sign_in(id, "dana", published)));
    let secrets = Arc::new(MemorySecretSource::new());
    secrets.set(
        ID,
        r#"{"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"}}"#,
    );
    let api = FaultyPutRecords::new(aws_sdk_kinesis::Client::new(&config));
    api.reject_event("e1", "InvalidArgumentException");
    let dead_letters = Arc::new(S3DeadLetterStore::new(s3, BUCKET.into(), None));
    let connector = Connector::with_sources(
        secrets,
        Arc::new(MemoryCursorStore::new()),
        KinesisSink::with_api(api, STREAM.into()),
        MemorySources(okta),
        RunSettings::default(),
    )
    .with_dead_letters(dead_letters.clone());
    let run = |action| {
        let invocation = Invocation {
            connector_id: ConnectorId::parse(ID).unwrap(),
            action,
        };
        let connector = &connector;
        async move {
            connector
                .handle(&invocation, Instant::now() + Duration::from_secs(30))
                .await
        }
    };

    let poll = run(Action::Poll).await;
    assert_eq!(poll.drain.as_ref().unwrap().dead_lettered, 1, "{poll:?}");
    let redrive = run(Action::Redrive).await;
    assert_eq!(redrive.outcome, Outcome::Ok, "{redrive:?}");
    assert!(
        redrive
            .message
            .as_deref()
            .unwrap()
            .starts_with("1 dead-lettered events re-published"),
        "{redrive:?}"
    );

    let stream: Vec<String> = moto::read_all_records(&config, STREAM)
        .await
        .into_iter()
        .map(|r| {
            let event: serde_json::Value = serde_json::from_slice(&r.data).unwrap();
            event["event_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(stream, ["e0", "e2", "e1"], "each once, the redriven last");
    let deadline = Instant::now() + Duration::from_secs(10);
    assert!(dead_letters.list(ID, deadline).await.unwrap().is_empty());
}

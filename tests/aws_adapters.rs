//! The AWS adapters against moto: the DynamoDB cursor store keeps the same contract as its
//! twins, Kinesis receives exactly what was published, Secrets Manager maps its errors.
//! The contract checks and fault injectors are test support behind the `testkit` feature.
#![cfg(feature = "testkit")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use backon::ExponentialBuilder;
use okta_ingest::cursor::dynamodb::DynamoCursorStore;
use okta_ingest::cursor::{conformance, Claim, CursorError, CursorStore};
use okta_ingest::secrets::secrets_manager::{SecretsManagerSource, DEFAULT_SECRET_ID_TEMPLATE};
use okta_ingest::secrets::{SecretSource, SecretsError};
use okta_ingest::sink::kinesis::faults::FaultyPutRecords;
use okta_ingest::sink::kinesis::KinesisSink;
use okta_ingest::sink::{EventSink, PublishStats, Record};
use okta_ingest::testkit::moto::{self, MotoServer};
use tokio::time::Instant;

const TABLE: &str = "okta-ingest-cursors";
const STREAM: &str = "identity-events";

/// A store on a fresh moto whose item `acme` is `connector_id` and `attributes`, exactly as a
/// hand edit leaves it. The server lives as long as the returned handle.
async fn store_with_hand_edited_acme(
    attributes: Vec<(&str, AttributeValue)>,
) -> (MotoServer, DynamoCursorStore) {
    let server = MotoServer::start();
    let store = cursor_store(&server).await;
    let config = server.sdk_config().await;
    let item = [("connector_id", AttributeValue::S("acme".into()))]
        .into_iter()
        .chain(attributes)
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    aws_sdk_dynamodb::Client::new(&config)
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    (server, store)
}

fn secrets_source(config: &aws_config::SdkConfig) -> SecretsManagerSource {
    SecretsManagerSource::new(
        aws_sdk_secretsmanager::Client::new(config),
        DEFAULT_SECRET_ID_TEMPLATE.into(),
    )
}

/// A one-shard stream, and a sink writing to it through `FaultyPutRecords` with quick retries;
/// `faults` arms the faults before the sink takes the API.
async fn faulty_sink(
    config: &aws_config::SdkConfig,
    faults: impl FnOnce(&FaultyPutRecords<aws_sdk_kinesis::Client>),
) -> KinesisSink<FaultyPutRecords<aws_sdk_kinesis::Client>> {
    moto::create_stream(config, STREAM, 1).await;
    let api = FaultyPutRecords::new(aws_sdk_kinesis::Client::new(config));
    faults(&api);
    KinesisSink::with_api(api, STREAM.into())
        .with_backoff(ExponentialBuilder::new().with_min_delay(Duration::from_millis(5)))
}

async fn publish(sink: &impl EventSink, records: &[Record]) -> PublishStats {
    sink.publish(records, Instant::now() + Duration::from_secs(60))
        .await
        .unwrap()
}

async fn cursor_store(server: &MotoServer) -> DynamoCursorStore {
    let config = server.sdk_config().await;
    moto::create_cursor_table(&config, TABLE).await;
    DynamoCursorStore::new(aws_sdk_dynamodb::Client::new(&config), TABLE.into())
}

#[tokio::test]
async fn dynamodb_store_keeps_the_cursor_contract() {
    let server = MotoServer::start();
    let store = cursor_store(&server).await;
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn concurrent_claims_acquire_exactly_once() {
    let server = MotoServer::start_serialized();
    let store = Arc::new(cursor_store(&server).await);
    let now = conformance::t0();
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .claim(
                        "acme",
                        &format!("invocation-{n}"),
                        now,
                        now + time::Duration::minutes(15),
                    )
                    .await
            })
        })
        .collect();
    let mut acquired = Vec::new();
    let mut held = 0;
    for claim in claims {
        match claim.await.unwrap().unwrap() {
            Claim::Acquired { lease, .. } => acquired.push(lease.owner),
            Claim::Held { .. } => held += 1,
            Claim::Paused(pause) => panic!("not paused: {pause:?}"),
        }
    }
    assert_eq!(
        acquired.len(),
        1,
        "exactly one invocation drains: {acquired:?}"
    );
    assert_eq!(held, 7);
    let item = store.load("acme").await.unwrap().unwrap();
    assert_eq!(item.lease_owner.as_ref(), acquired.first());
}

#[tokio::test]
async fn malformed_item_names_the_attribute() {
    let (_server, store) = store_with_hand_edited_acme(vec![(
        "lease_expires_at",
        AttributeValue::S("tomorrow".into()),
    )])
    .await;
    let err = store.load("acme").await.unwrap_err();
    assert!(matches!(err, CursorError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("lease_expires_at"), "{err}");
}

#[tokio::test]
async fn hand_edited_items_that_read_as_free_and_unpaused_can_be_claimed() {
    // `paused = false` and an owner without an expiry both read as "not paused" / "free".
    let (_server, store) = store_with_hand_edited_acme(vec![
        ("paused", AttributeValue::Bool(false)),
        ("lease_owner", AttributeValue::S("gone".into())),
        ("version", AttributeValue::N("3".into())),
    ])
    .await;
    let now = time::OffsetDateTime::now_utc();
    let claim = store
        .claim("acme", "me", now, now + time::Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        matches!(claim, okta_ingest::cursor::Claim::Acquired { .. }),
        "{claim:?}"
    );
}

#[tokio::test]
async fn missing_table_is_a_readable_service_error() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    let store = DynamoCursorStore::new(aws_sdk_dynamodb::Client::new(&config), "absent".into());
    let err = store.load("acme").await.unwrap_err();
    assert!(matches!(err, CursorError::Service { .. }), "{err}");
    assert!(err.to_string().contains("absent"), "{err}");
}

#[tokio::test]
async fn kinesis_receives_every_published_record() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    moto::create_stream(&config, STREAM, 2).await;
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&config), STREAM.into());
    // 401 people with three records each: a call holds one record per person.
    let records: Vec<Record> = (0..1203)
        .map(|n| Record {
            event_id: format!("uuid-{n:04}"),
            partition_key: format!("00u{}", n % 401),
            data: format!("{{\"uuid\":\"uuid-{n:04}\",\"n\":{n}}}\n").into_bytes(),
        })
        .collect();
    let stats = publish(&sink, &records).await;
    assert_eq!(
        stats.calls, 3,
        "1203 records take three calls of at most 500"
    );
    assert_eq!(stats.retried_records, 0);

    let stored = moto::read_all_records(&config, STREAM).await;
    assert_eq!(stored.len(), records.len());
    let mut by_key: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for record in &stored {
        by_key
            .entry(record.partition_key.clone())
            .or_default()
            .push(record.data.clone());
    }
    for (key, data) in by_key {
        let expected: Vec<Vec<u8>> = records
            .iter()
            .filter(|r| r.partition_key == key)
            .map(|r| r.data.clone())
            .collect();
        assert_eq!(
            data, expected,
            "records of {key} arrive complete and in order"
        );
    }
}

#[tokio::test]
async fn secrets_manager_fetches_by_template_and_maps_not_found() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    moto::put_secret(
        &config,
        "okta-ingest/acme",
        "{\"org_url\":\"https://acme.okta.com\"}",
    )
    .await;
    let source = secrets_source(&config);
    let text = source.fetch("acme").await.unwrap();
    assert_eq!(text.expose(), "{\"org_url\":\"https://acme.okta.com\"}");
    match source.fetch("globex").await {
        Err(SecretsError::NotFound { secret_id }) => assert_eq!(secret_id, "okta-ingest/globex"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn binary_secret_is_reported_empty() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name("okta-ingest/acme")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![1, 2, 3]))
        .send()
        .await
        .unwrap();
    let source = secrets_source(&config);
    assert!(matches!(
        source.fetch("acme").await,
        Err(SecretsError::Empty { .. })
    ));
}

#[tokio::test]
async fn kinesis_partial_failures_resend_only_the_rejected_records() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    let sink = faulty_sink(&config, |api| {
        api.throttle_calls(1);
        api.reject_entries(30, "ProvisionedThroughputExceededException");
    })
    .await;
    // One person per record, so the 120 records fit one call.
    let records: Vec<Record> = (0..120)
        .map(|n| Record {
            event_id: format!("uuid-{n:03}"),
            partition_key: format!("00u{n}"),
            data: format!("{{\"uuid\":\"uuid-{n:03}\"}}\n").into_bytes(),
        })
        .collect();
    let stats = publish(&sink, &records).await;
    assert_eq!(
        stats.calls, 3,
        "throttled call, partial failure, resend of the rejected"
    );
    assert_eq!(stats.retried_records, 120 + 30);

    let mut stored: Vec<Vec<u8>> = moto::read_all_records(&config, STREAM)
        .await
        .into_iter()
        .map(|r| r.data)
        .collect();
    stored.sort();
    let expected: Vec<Vec<u8>> = records.into_iter().map(|r| r.data).collect();
    assert_eq!(stored, expected, "every record exactly once");
}

#[tokio::test]
async fn a_rejected_record_still_reaches_its_shard_before_the_same_persons_next_one() {
    let server = MotoServer::start();
    let config = server.sdk_config().await;
    let sink = faulty_sink(&config, |api| {
        api.reject_event("a1", "ProvisionedThroughputExceededException");
    })
    .await;
    let records: Vec<Record> = [
        ("a1", "00uA"),
        ("b1", "00uB"),
        ("a2", "00uA"),
        ("b2", "00uB"),
    ]
    .into_iter()
    .map(|(id, key)| Record {
        event_id: id.into(),
        partition_key: key.into(),
        data: format!("{id}\n").into_bytes(),
    })
    .collect();
    let stats = publish(&sink, &records).await;
    assert_eq!(stats.retried_records, 1, "a1 was sent twice");

    let stream = moto::read_all_records(&config, STREAM).await;
    let person_a: Vec<&[u8]> = stream
        .iter()
        .filter(|r| r.partition_key == "00uA")
        .map(|r| r.data.as_slice())
        .collect();
    assert_eq!(person_a, [&b"a1\n"[..], b"a2\n"], "in the shard's order");
    assert_eq!(stream.len(), 4, "each record once");
}

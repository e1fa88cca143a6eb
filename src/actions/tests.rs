//! The actions against in-memory twins of every port: no HTTP, no simulator.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::*;
use crate::cursor::memory::MemoryCursorStore;
use crate::cursor::{backfill_key, CursorItem};
use crate::drain::StopReason;
use crate::invocation::{BackfillRequest, ConnectorId};
use crate::okta::memory::{sign_in, MemoryLogSource, MemorySources};
use crate::okta::RateLimitStatus;
use crate::secrets::memory::MemorySecretSource;
use crate::sink::memory::MemorySink;

const ID: &str = "acme";

type TwinConnector =
    Connector<Arc<MemorySecretSource>, Arc<MemoryCursorStore>, Arc<MemorySink>, MemorySources>;

struct Twins {
    okta: Arc<MemoryLogSource>,
    store: Arc<MemoryCursorStore>,
    sink: Arc<MemorySink>,
    connector: TwinConnector,
}

const DOCUMENT: &str =
    r#"{"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"}}"#;

fn twins(events: usize) -> Twins {
    twins_with(events, DOCUMENT, None, |_| {})
}

/// Twins whose polls tail every `interval`.
fn tailing(events: usize, interval: Duration) -> Twins {
    twins_with(events, DOCUMENT, None, |settings| {
        settings.tail_interval = Some(interval)
    })
}

fn twins_with(
    events: usize,
    document: &str,
    ocsf: Option<Arc<MemorySink>>,
    adjust: impl FnOnce(&mut RunSettings),
) -> Twins {
    let okta = Arc::new(MemoryLogSource::new());
    append(&okta, 0..events);
    let secrets = Arc::new(MemorySecretSource::new());
    secrets.set(ID, document);
    let store = Arc::new(MemoryCursorStore::new());
    let sink = Arc::new(MemorySink::new());
    let mut settings = RunSettings {
        safety_margin: Duration::from_millis(100),
        ..RunSettings::default()
    };
    settings.drain.page_limit = 10;
    adjust(&mut settings);
    let connector = Connector::with_sources(
        secrets,
        store.clone(),
        sink.clone(),
        MemorySources(okta.clone()),
        settings,
    );
    let connector = match ocsf {
        Some(sink) => connector.with_ocsf_sink(sink),
        None => connector,
    };
    Twins {
        okta,
        store,
        sink,
        connector,
    }
}

fn append(okta: &MemoryLogSource, range: std::ops::Range<usize>) {
    let now = OffsetDateTime::now_utc();
    okta.append(
        range.map(|n| sign_in(&format!("e{n}"), "dana", now - time::Duration::seconds(60))),
    );
}

impl Twins {
    /// The sink holds `e0` to `e{count - 1}`, in that order.
    fn assert_published_in_order(&self, count: usize, why: &str) {
        let ids: Vec<String> = self
            .sink
            .records()
            .into_iter()
            .map(|r| r.event_id)
            .collect();
        assert_eq!(
            ids,
            (0..count).map(|n| format!("e{n}")).collect::<Vec<_>>(),
            "{why}"
        );
    }

    /// A backfill of the last 5 minutes that reads one page, then finds Okta stalled until
    /// its budget ends; Okta answers again afterwards.
    async fn start_a_backfill_that_stalls(&self) -> Summary {
        self.okta.answer_only(1);
        let summary = self
            .run_for(
                Action::Backfill(last_minutes(5, false)),
                Duration::from_millis(400),
            )
            .await;
        self.okta.answer_only(1000);
        summary
    }

    async fn run(&self, action: Action) -> Summary {
        self.run_for(action, Duration::from_secs(5)).await
    }

    async fn run_for(&self, action: Action, budget: Duration) -> Summary {
        let invocation = Invocation {
            connector_id: ConnectorId::parse(ID).unwrap(),
            action,
        };
        self.connector
            .handle(&invocation, Instant::now() + budget)
            .await
    }
}

#[tokio::test]
async fn a_poll_drains_releases_its_lease_and_serializes_typed_fields_as_strings() {
    let twins = twins(25);
    let summary = twins.run(Action::Poll).await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    assert_eq!(summary.drain.as_ref().unwrap().published, 25);
    assert_eq!(twins.sink.records().len(), 25);
    let item = twins.store.snapshot(ID).unwrap();
    assert_eq!(item.lease_owner, None);
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["outcome"], "ok");
    assert_eq!(json["action"], "poll");
}

#[tokio::test]
async fn request_figures_belong_to_each_warm_invocation() {
    let twins = twins(25);
    twins.okta.set_rate_limit(RateLimitStatus {
        limit: 100,
        remaining: 60,
        reset: OffsetDateTime::now_utc() + time::Duration::seconds(60),
    });
    let first = twins.run(Action::Poll).await;
    // 2 full pages and a short one that says "caught up".
    assert_eq!(first.okta_requests, 3);
    assert_eq!(first.rate_limit_remaining, Some(60));

    append(&twins.okta, 25..30);
    twins.okta.fail_next([OktaError::RateLimited]);
    let second = twins.run(Action::Poll).await;
    assert_eq!(second.outcome, Outcome::Failed, "no progress: {second:?}");
    assert_eq!((second.okta_requests, second.okta_throttled), (1, 1));

    twins
        .run(Action::Disable {
            reason: "maintenance".into(),
        })
        .await;
    let paused = twins.run(Action::Poll).await;
    assert_eq!(paused.outcome, Outcome::Paused);
    assert_eq!((paused.okta_requests, paused.okta_throttled), (0, 0));
    assert_eq!(
        paused.rate_limit_remaining, None,
        "an earlier invocation's headers say nothing about this one"
    );
}

#[tokio::test]
async fn a_disabled_connector_makes_no_request_until_resumed() {
    let twins = twins(5);
    let disabled = twins
        .run(Action::Disable {
            reason: "maintenance".into(),
        })
        .await;
    assert!(disabled.state.unwrap().paused);
    let paused = twins.run(Action::Poll).await;
    assert_eq!(paused.outcome, Outcome::Paused);
    assert!(paused.message.unwrap().contains("maintenance"));
    assert!(twins.okta.requests().is_empty());

    let resumed = twins.run(Action::Resume).await;
    assert!(!resumed.state.unwrap().paused);
    let polled = twins.run(Action::Poll).await;
    assert_eq!(polled.outcome, Outcome::Ok);
    assert_eq!(twins.sink.records().len(), 5);
}

#[tokio::test]
async fn an_unhealable_refusal_pauses_at_once_after_one_fresh_read_of_the_secret() {
    let twins = twins(5);
    let refused = || OktaError::AuthRejected {
        code: "invalid_client".into(),
        summary: "deactivated".into(),
    };
    twins.okta.fail_next([refused(), refused()]);
    let summary = twins.run(Action::Poll).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    assert!(matches!(
        summary.error,
        Some(RunError::Drain(DrainError::Okta(
            OktaError::AuthRejected { .. }
        )))
    ));
    assert_eq!(
        twins.okta.requests().len(),
        2,
        "retried once with a fresh secret"
    );
    let state = summary.state.unwrap();
    assert!(state.paused);
    assert_eq!(state.paused_by, Some("connector"));
}

#[tokio::test]
async fn a_failure_without_progress_counts_once_and_progress_resets_the_count() {
    let twins = twins(25);
    twins.okta.fail_next([OktaError::Transport("reset".into())]);
    let failed = twins.run(Action::Poll).await;
    assert_eq!(failed.outcome, Outcome::Failed);
    assert_eq!(failed.state.unwrap().consecutive_failures, 1);
    assert!(failed.message.unwrap().contains("reset"));

    // Two pages land, then Okta fails: progress counts as success.
    twins.okta.answer_only(2);
    let partial = twins
        .run_for(Action::Poll, Duration::from_millis(400))
        .await;
    assert_eq!(partial.outcome, Outcome::Ok, "{partial:?}");
    assert_eq!(partial.state.unwrap().consecutive_failures, 0);
    assert!(partial
        .message
        .unwrap()
        .contains("stopped early after progress"));
}

#[tokio::test]
async fn a_held_lease_answers_at_once_without_reading_okta() {
    let twins = twins(5);
    twins.store.steal_lease(ID, "other");
    let held = twins.run(Action::Poll).await;
    assert_eq!(held.outcome, Outcome::LeaseHeld);
    assert!(twins.okta.requests().is_empty());
}

#[tokio::test]
async fn test_connection_reports_the_last_day_and_touches_no_cursor() {
    let twins = twins(7);
    let summary = twins.run(Action::TestConnection).await;
    assert_eq!(summary.outcome, Outcome::Ok);
    assert_eq!(summary.connection.unwrap().events_last_24h, 7);
    assert!(twins.store.snapshot(ID).is_none());
}

fn last_minutes(minutes: i64, restart: bool) -> BackfillRequest {
    let now = OffsetDateTime::now_utc();
    BackfillRequest {
        start: Some(now - time::Duration::minutes(minutes)),
        end: Some(now),
        days: None,
        restart,
    }
}

#[tokio::test]
async fn a_repeated_backfill_request_answers_already_delivered_and_restart_reads_again() {
    let twins = twins(12);
    twins.run(Action::Poll).await;
    let first = twins.run(Action::Backfill(last_minutes(5, false))).await;
    assert_eq!(first.drain.unwrap().published, 12);
    let requests = twins.okta.requests().len();

    // The same request a moment later (its end moved on, read by the live stream).
    let again = twins.run(Action::Backfill(last_minutes(5, false))).await;
    assert_eq!(again.outcome, Outcome::Ok);
    assert!(again.message.unwrap().contains("already delivered"));
    assert!(again.drain.is_none());
    assert!(again.backfill.unwrap().complete);
    assert_eq!(twins.okta.requests().len(), requests, "nothing read again");
    assert_eq!(
        twins.sink.records().len(),
        24,
        "live 12 + backfill 12, no more"
    );

    let restarted = twins.run(Action::Backfill(last_minutes(5, true))).await;
    assert_eq!(
        restarted.drain.unwrap().published,
        12,
        "restart re-reads the window"
    );
    assert_eq!(twins.sink.records().len(), 36);
}

#[tokio::test]
async fn a_repeated_request_continues_the_backfill_in_progress() {
    let twins = twins(30);
    // The first slice reads one page, then Okta stalls until the budget ends.
    let first = twins.start_a_backfill_that_stalls().await;
    assert!(!first.backfill.unwrap().complete);
    let again = twins.run(Action::Backfill(last_minutes(5, false))).await;
    assert!(again.message.unwrap().contains("continues"), "continued");
    assert_eq!(
        again.drain.unwrap().published,
        20,
        "from where the first stopped"
    );
    assert_eq!(twins.sink.records().len(), 30, "nothing twice");
}

#[tokio::test]
async fn a_polls_backfill_slice_reports_what_it_published() {
    let twins = twins(12);
    twins.start_a_backfill_that_stalls().await;
    let poll = twins.run_for(Action::Poll, Duration::from_secs(8)).await;
    assert_eq!(poll.outcome, Outcome::Ok, "{poll:?}");
    assert_eq!(poll.drain.unwrap().published, 12, "the live stream");
    assert_eq!(
        poll.backfill_drain.unwrap().published,
        2,
        "the rest of the window"
    );
}

#[tokio::test]
async fn a_backfill_reads_its_window_through_its_own_item() {
    let twins = twins(12);
    let now = OffsetDateTime::now_utc();
    let request = BackfillRequest {
        start: Some(now - time::Duration::minutes(5)),
        end: Some(now),
        ..Default::default()
    };
    let summary = twins.run(Action::Backfill(request)).await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    assert_eq!(
        summary.drain.unwrap().stop_reason,
        Some(StopReason::WindowComplete)
    );
    assert!(summary.backfill.unwrap().complete);
    let item: CursorItem = twins.store.snapshot(&backfill_key(ID)).unwrap();
    assert_eq!(item.delivered_total, 12);
    assert!(
        twins.store.snapshot(ID).is_none(),
        "the live item is untouched"
    );
}

const BOTH_OUTPUTS: &str = r#"{"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"},
    "outputs": ["total", "ocsf"]}"#;

#[tokio::test]
async fn a_connector_asking_for_both_outputs_publishes_each_event_to_both_streams() {
    let ocsf = Arc::new(MemorySink::new());
    let twins = twins_with(25, BOTH_OUTPUTS, Some(ocsf.clone()), |_| {});
    let summary = twins.run(Action::Poll).await;
    assert_eq!(summary.outcome, Outcome::Ok, "{summary:?}");
    assert_eq!(twins.sink.records().len(), 25);
    let records = ocsf.records();
    assert_eq!(records.len(), 25);
    let first: serde_json::Value = serde_json::from_slice(&records[0].data).unwrap();
    assert_eq!(first["metadata"]["version"], "1.8.0");
}

#[tokio::test]
async fn asking_for_ocsf_without_an_ocsf_stream_fails_before_reading_anything() {
    let twins = twins_with(25, BOTH_OUTPUTS, None, |_| {});
    let summary = twins.run(Action::Poll).await;
    assert_eq!(summary.outcome, Outcome::Failed);
    let message = summary.message.unwrap_or_default();
    assert!(message.contains("OCSF_STREAM"), "{message}");
    assert!(twins.sink.records().is_empty());
    let item = twins.store.snapshot(ID).unwrap();
    assert_eq!(item.cursor, None, "the cursor did not move");
}

#[tokio::test]
async fn an_ocsf_only_connector_writes_nothing_to_the_total_stream() {
    let ocsf = Arc::new(MemorySink::new());
    let document = r#"{"org_url": "https://acme.okta.com", "auth": {"type": "ssws", "token": "00abc"}, "outputs": ["ocsf"]}"#;
    let twins = twins_with(5, document, Some(ocsf.clone()), |_| {});
    assert_eq!(twins.run(Action::Poll).await.outcome, Outcome::Ok);
    assert!(twins.sink.records().is_empty());
    assert_eq!(ocsf.records().len(), 5);
}

#[tokio::test]
async fn a_tailing_poll_delivers_new_events_each_interval_and_hands_over_cleanly() {
    let twins = tailing(5, Duration::from_millis(50));
    let later = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        append(&twins.okta, 5..8);
        // A scheduled invocation meanwhile finds the lease held and reads nothing.
        let requests = twins.okta.requests().len();
        let held = twins.run(Action::Poll).await;
        assert_eq!(requests, twins.okta.requests().len());
        held
    };
    let (tail, held) = tokio::join!(
        twins.run_for(Action::Poll, Duration::from_millis(900)),
        later
    );
    assert_eq!(held.outcome, Outcome::LeaseHeld);
    assert_eq!(tail.outcome, Outcome::Ok, "{tail:?}");
    let rounds = tail.tail_rounds.unwrap();
    assert!(rounds >= 3, "{rounds}");
    assert_eq!(
        tail.drain.as_ref().unwrap().published,
        8,
        "events of later rounds too"
    );
    // One request per round: each round's short page says "caught up".
    assert_eq!(tail.okta_requests, 1 + u64::from(rounds));
    let item = twins.store.snapshot(ID).unwrap();
    assert_eq!(item.lease_owner, None, "released at the end");
    assert_eq!(item.delivered_total, 8, "each round checkpointed");

    // The next scheduled poll takes over at once, from the cursor the tail left.
    append(&twins.okta, 8..10);
    let next = twins
        .run_for(Action::Poll, Duration::from_millis(300))
        .await;
    assert_eq!(next.outcome, Outcome::Ok);
    twins.assert_published_in_order(10, "in order, none twice");
}

#[tokio::test]
async fn the_last_poll_before_a_tail_ends_takes_it_over_and_earlier_ones_stand_back() {
    let twins = twins_with(5, DOCUMENT, None, |settings| {
        settings.tail_interval = Some(Duration::from_millis(50));
        settings.takeover_horizon = Duration::from_millis(800);
    });
    // The tail's work ends at 1,900 ms (its budget less the 100 ms safety margin).
    let tail = twins.run_for(Action::Poll, Duration::from_millis(2000));
    let early = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        twins
            .run_for(Action::Poll, Duration::from_millis(3000))
            .await
    };
    let late = async {
        tokio::time::sleep(Duration::from_millis(1300)).await;
        append(&twins.okta, 5..8);
        twins
            .run_for(Action::Poll, Duration::from_millis(3000))
            .await
    };
    let more = async {
        tokio::time::sleep(Duration::from_millis(2600)).await;
        append(&twins.okta, 8..11);
    };
    let (tail, early, late, ()) = tokio::join!(tail, early, late, more);
    assert_eq!(tail.outcome, Outcome::Ok, "{tail:?}");
    assert_eq!(
        early.outcome,
        Outcome::LeaseHeld,
        "the tail ends beyond the horizon: {early:?}"
    );
    assert_eq!(late.outcome, Outcome::Ok, "{late:?}");
    assert!(
        late.message
            .as_deref()
            .unwrap_or("")
            .contains("took the lease over"),
        "{late:?}"
    );
    assert!(late.tail_rounds.unwrap() >= 1, "the successor tails on");
    twins.assert_published_in_order(11, "in order, none twice, across the handover");
    let item = twins.store.snapshot(ID).unwrap();
    assert_eq!(item.lease_owner, None, "the successor released the lease");
    assert_eq!(item.delivered_total, 11);
}

#[tokio::test]
async fn disable_stops_a_tailing_poll_within_one_interval() {
    let twins = tailing(5, Duration::from_millis(50));
    let disable = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        twins
            .run(Action::Disable {
                reason: "maintenance".into(),
            })
            .await
    };
    let tail = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            twins.run_for(Action::Poll, Duration::from_secs(60)),
            disable
        )
        .0
    })
    .await
    .expect("the tail stopped long before its budget");
    assert_eq!(tail.outcome, Outcome::Ok);
    assert!(tail.message.unwrap().contains("paused"));
    let item = twins.store.snapshot(ID).unwrap();
    assert_eq!(item.lease_owner, None, "the lease is released");
    assert!(item.paused.is_some());
}

#[tokio::test]
async fn a_backfill_in_progress_gets_its_time_between_tail_rounds() {
    let twins = tailing(12, Duration::from_millis(100));
    twins.start_a_backfill_that_stalls().await;
    let tail = twins
        .run_for(Action::Poll, Duration::from_millis(800))
        .await;
    assert_eq!(tail.outcome, Outcome::Ok, "{tail:?}");
    assert!(tail.tail_rounds.unwrap() >= 1);
    assert!(tail.backfill.unwrap().complete);
    assert_eq!(
        tail.backfill_drain.unwrap().published,
        2,
        "the rest of the window"
    );
    assert_eq!(tail.drain.unwrap().published, 12);
}

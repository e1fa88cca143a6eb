//! The connector's contract against the Okta simulator and in-memory AWS twins: every human
//! event delivered, the cursor moving only after acknowledgement, leases, pauses and budgets.
#![cfg(feature = "testkit")]

use std::sync::Arc;
use std::time::Duration;

use okta_ingest::actions::Outcome;
use okta_ingest::cursor::memory::CursorOp;
use okta_ingest::drain::StopReason;
use okta_ingest::invocation::{Action, BackfillRequest};
use okta_ingest::testkit::rig::{sim_config, Rig, CONNECTOR};
use okta_ingest::testkit::schema::assert_valid_total_event;
use okta_sim::Fault;

fn stop_reason(summary: &okta_ingest::actions::Summary) -> Option<StopReason> {
    summary.drain.as_ref().and_then(|d| d.stop_reason)
}

#[tokio::test]
async fn full_drain_delivers_every_human_event_exactly_once() {
    let rig = Rig::start(sim_config(4500, 1)).await;
    let summary = rig.poll().await.expect("poll succeeds");
    let drain = summary.drain.as_ref().unwrap();
    assert!(drain.caught_up, "{summary:?}");
    assert_eq!(drain.fetched, 4500);
    assert!(
        drain.excluded_total() > 0,
        "the simulator mixes in system events"
    );
    assert_eq!(drain.published + drain.excluded_total(), drain.fetched);
    assert_eq!(
        rig.assert_nothing_missing(),
        0,
        "no duplicates without failures"
    );
    for record in rig.sink.records().iter().take(500) {
        let event: serde_json::Value = serde_json::from_slice(&record.data).unwrap();
        assert_valid_total_event(&event);
        assert_eq!(event["event_id"], record.event_id.as_str());
    }
    // limit 1000: 4 full pages and a short one, which says "caught up" by itself.
    let logs = rig
        .sim
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/logs")
        .count();
    assert_eq!(logs, 5, "requests = ceil((N + 1) / 1000)");
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert!(item.cursor.as_deref().unwrap().contains("after="));
    assert_eq!(item.lease_owner, None, "lease released");
    assert_eq!(item.delivered_total, drain.published);
}

#[tokio::test]
async fn later_and_late_persisted_events_are_picked_up_by_the_next_poll() {
    let rig = Rig::start(sim_config(800, 2)).await;
    rig.poll().await.unwrap();
    rig.sim.append_events(300);
    rig.sim
        .append_late_events(40, Duration::from_secs(3 * 3600));
    let summary = rig.poll().await.unwrap();
    assert_eq!(summary.drain.as_ref().unwrap().fetched, 340);
    assert_eq!(rig.assert_nothing_missing(), 0);
    let idle = rig.poll().await.unwrap();
    let drain = idle.drain.as_ref().unwrap();
    assert_eq!((drain.fetched, drain.caught_up), (0, true));
}

#[tokio::test]
async fn sink_failure_mid_drain_loses_nothing_and_the_next_poll_resumes() {
    let rig = Rig::start(sim_config(3000, 3)).await;
    rig.sink.fail_after(1200);
    // Pages before the failure were delivered and checkpointed: the run made progress, so
    // it is not counted as a failure, but it stops at the unacknowledged page.
    let partial = rig.poll().await.expect("progress before the failure");
    assert_eq!(stop_reason(&partial), Some(StopReason::Failed));
    assert!(partial
        .message
        .as_deref()
        .unwrap()
        .contains("injected fault"));
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert_eq!(item.consecutive_failures, 0);
    assert_eq!(
        item.delivered_total,
        partial.drain.as_ref().unwrap().published
    );
    rig.poll_until_caught_up(3).await;
    let duplicates = rig.assert_nothing_missing();
    assert!(
        duplicates > 0 && duplicates <= 1000,
        "only the unacknowledged page is replayed: {duplicates}"
    );
}

#[tokio::test]
async fn failure_before_any_progress_counts_and_five_pause_the_connector() {
    let rig = Rig::start(sim_config(100, 4)).await;
    rig.secrets.fail_next(5);
    for n in 1..=5 {
        let failed = rig.poll().await.expect_err("secret read fails");
        assert!(failed.message.unwrap().contains("injected") || n > 0);
        assert_eq!(
            rig.store.snapshot(CONNECTOR).unwrap().consecutive_failures,
            n
        );
    }
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert!(item.paused.is_some(), "paused after 5 consecutive failures");
    assert!(item.cursor.is_none(), "cursor untouched");
    let before = rig.sim.requests().len();
    let paused = rig.poll().await.unwrap();
    assert_eq!(paused.outcome, Outcome::Paused);
    assert_eq!(
        rig.sim.requests().len(),
        before,
        "a paused connector calls Okta no more"
    );

    let resumed = rig.resume().await.unwrap();
    assert_eq!(resumed.state.as_ref().unwrap().consecutive_failures, 0);
    rig.poll_until_caught_up(2).await;
    rig.assert_nothing_missing();
}

#[tokio::test]
async fn revoked_credentials_pause_at_once() {
    let rig = Rig::start(sim_config(100, 5)).await;
    rig.secrets.set(
        CONNECTOR,
        &serde_json::json!({"org_url": rig.sim.base_url(),
        "auth": {"type": "ssws", "token": "00revoked-or-never-valid-token-000000"}})
        .to_string(),
    );
    let failed = rig.poll().await.expect_err("auth rejected");
    assert!(
        failed.message.as_deref().unwrap().contains("E0000011"),
        "{failed:?}"
    );
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert!(
        item.paused.is_some(),
        "no point burning five tries on revoked credentials"
    );
    assert!(item.cursor.is_none());
}

#[tokio::test]
async fn rotated_secret_is_picked_up_after_an_auth_failure() {
    let rig = Rig::start(sim_config(200, 6)).await;
    let good = okta_ingest::testkit::rig::ssws_secret(&rig.sim);
    rig.secrets.set(CONNECTOR, &good.replace("00sim", "00old"));
    // The cache holds the stale secret; rotation happens in the secret store.
    let _ = rig
        .invoke(Action::TestConnection, Duration::from_secs(5))
        .await;
    rig.secrets.set(CONNECTOR, &good);
    let summary = rig
        .poll()
        .await
        .expect("re-reading the secret heals the auth failure");
    assert!(summary.drain.as_ref().unwrap().caught_up);
    rig.assert_nothing_missing();
}

#[tokio::test]
async fn overlapping_invocations_never_both_drain() {
    let rig = Rig::start(sim_config(2000, 7)).await;
    rig.sim.inject(Fault::Delay(Duration::from_millis(300)), 3);
    let (a, b) = tokio::join!(rig.poll(), rig.poll());
    let outcomes = [a.unwrap().outcome, b.unwrap().outcome];
    assert!(
        outcomes.contains(&Outcome::Ok) && outcomes.contains(&Outcome::LeaseHeld),
        "{outcomes:?}"
    );
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn stolen_lease_cannot_move_the_cursor() {
    let rig = Rig::start(sim_config(3000, 8)).await;
    let store = rig.store.clone();
    // Take the lease over while the first page is being published.
    rig.sim.inject(Fault::Delay(Duration::from_millis(400)), 1);
    let thief = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        store.steal_lease(CONNECTOR, "another-invocation");
    };
    let (summary, ()) = tokio::join!(rig.poll(), thief);
    let summary = summary.unwrap();
    assert_eq!(
        stop_reason(&summary),
        Some(StopReason::LeaseLost),
        "{summary:?}"
    );
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert_eq!(item.lease_owner.as_deref(), Some("another-invocation"));
    assert!(item.cursor.is_none(), "the fenced checkpoint did not land");
}

#[tokio::test]
async fn time_budget_is_respected() {
    let rig = Rig::start(sim_config(5000, 9)).await;
    rig.sim
        .inject(Fault::Delay(Duration::from_millis(700)), 100);
    let started = std::time::Instant::now();
    let summary = rig.invoke(Action::Poll, Duration::from_secs(2)).await;
    let elapsed = started.elapsed();
    // The budget plus room for a loaded test machine; an unbounded call would take 70 s here.
    assert!(elapsed < Duration::from_millis(3000), "took {elapsed:?}");
    let summary = summary.unwrap_or_else(|s| s);
    let drain = summary.drain.as_ref().unwrap();
    assert!(!drain.caught_up);
    rig.sim.clear_faults();
    rig.poll_until_caught_up(3).await;
    rig.assert_nothing_missing();
}

#[tokio::test]
async fn malformed_page_is_refused_without_moving_the_cursor() {
    let rig = Rig::start(sim_config(1500, 10)).await;
    rig.poll().await.unwrap();
    let before = rig.store.snapshot(CONNECTOR).unwrap().cursor;
    rig.sim.append_events(100);
    // Retried within the invocation like a 5xx; a failure once the retries run out.
    rig.sim.inject(Fault::MalformedBody, 6);
    let failed = rig.poll().await.expect_err("malformed body");
    assert!(failed.message.unwrap().contains("malformed"));
    assert_eq!(rig.store.snapshot(CONNECTOR).unwrap().cursor, before);
    rig.sim.inject(Fault::ForeignNextLink, 1);
    let failed = rig.poll().await.expect_err("foreign next link");
    assert!(failed.message.unwrap().contains("origin"));
    assert_eq!(rig.store.snapshot(CONNECTOR).unwrap().cursor, before);
    rig.poll_until_caught_up(2).await;
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn bad_secret_is_a_clear_error_and_touches_no_cursor() {
    let rig = Rig::start(sim_config(10, 11)).await;
    rig.secrets.set(
        CONNECTOR,
        r#"{"org_url": "http://evil.example.com", "auth": {"type": "ssws", "token": "x"}}"#,
    );
    let failed = rig.poll().await.expect_err("bad org url");
    assert!(
        failed.message.as_deref().unwrap().contains("org_url"),
        "{failed:?}"
    );
    assert!(rig.store.snapshot(CONNECTOR).unwrap().cursor.is_none());
    assert!(rig.sim.requests().is_empty(), "nothing was sent anywhere");
}

#[tokio::test]
async fn cursor_store_throttling_fails_the_run_without_losing_events() {
    let rig = Rig::start(sim_config(2500, 12)).await;
    rig.store.fail_next(CursorOp::Checkpoint, 1);
    let failed = rig.poll().await.expect_err("checkpoint throttled");
    assert_eq!(failed.outcome, Outcome::Failed);
    rig.poll_until_caught_up(3).await;
    let duplicates = rig.assert_nothing_missing();
    assert!(duplicates <= 1000, "{duplicates}");
}

#[tokio::test]
async fn backfill_uses_its_own_cursor_and_leaves_the_live_one_alone() {
    let rig = Rig::start(sim_config(1200, 13)).await;
    rig.poll().await.unwrap();
    let live = rig.store.snapshot(CONNECTOR).unwrap();
    let request = BackfillRequest {
        days: Some(1),
        ..Default::default()
    };
    let summary = rig
        .invoke(Action::Backfill(request), Duration::from_secs(30))
        .await
        .unwrap();
    let progress = summary.backfill.as_ref().expect("progress reported");
    assert!(progress.complete, "{summary:?}");
    assert_eq!(progress.done_fraction, 1.0);
    assert_eq!(
        rig.store.snapshot(CONNECTOR).unwrap().cursor,
        live.cursor,
        "live cursor untouched"
    );
    let backfill = rig.backfill_item();
    assert_eq!(
        backfill.cursor.as_deref(),
        Some(okta_ingest::drain::BACKFILL_DONE)
    );
    // Backfill and live overlap; every event arrived, the overlap twice (dedupe by uuid).
    let duplicates = rig.assert_nothing_missing();
    assert_eq!(duplicates as u64, backfill.delivered_total);
    // Once it is complete, a request for another window starts a new backfill.
    let again = rig
        .invoke(
            Action::Backfill(BackfillRequest::default()),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(
        again.drain.as_ref().unwrap().fetched,
        1200,
        "a new window starts a new backfill"
    );
}

#[tokio::test]
async fn disable_pauses_and_resume_continues_from_the_stored_cursor() {
    let rig = Rig::start(sim_config(500, 14)).await;
    rig.poll().await.unwrap();
    let disabled = rig.disable("maintenance").await.unwrap();
    assert!(disabled.state.as_ref().unwrap().paused);
    rig.sim.append_events(250);
    assert_eq!(rig.poll().await.unwrap().outcome, Outcome::Paused);
    rig.resume().await.unwrap();
    let resumed = rig.poll().await.unwrap();
    assert_eq!(resumed.drain.as_ref().unwrap().fetched, 250);
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn test_connection_counts_recent_events() {
    let rig = Rig::start(sim_config(700, 15)).await;
    let summary = rig
        .invoke(Action::TestConnection, Duration::from_secs(10))
        .await
        .unwrap();
    let report = serde_json::to_value(summary.connection.as_ref().unwrap()).unwrap();
    assert_eq!(report["events_last_24h"], 700);
    assert_eq!(report["auth_mode"], "ssws");
    assert!(
        rig.store.snapshot(CONNECTOR).is_none(),
        "test_connection touches no cursor"
    );
}

#[tokio::test]
async fn cursor_older_than_retention_restarts_from_the_oldest_retained_event() {
    use okta_ingest::cursor::CursorItem;
    let rig = Rig::start(sim_config(600, 16)).await;
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(120);
    rig.store.seed(CursorItem {
        key: CONNECTOR.into(),
        cursor: Some(format!(
            "{}/api/v1/logs?after=aged-out-position&limit=1000",
            rig.sim.base_url()
        )),
        version: 7,
        newest_published: Some(long_ago),
        last_success_at: Some(long_ago),
        updated_at: Some(long_ago),
        paused: Some(okta_ingest::cursor::Pause {
            reason: "outage".into(),
            by: okta_ingest::cursor::PausedBy::Connector,
            at: long_ago,
        }),
        consecutive_failures: 5,
        ..CursorItem::default()
    });
    let resumed = rig.resume().await.unwrap();
    assert!(resumed.message.unwrap().contains("90-day retention"));
    let summary = rig.poll().await.unwrap();
    let drain = summary.drain.as_ref().unwrap();
    assert!(drain.restarted_beyond_retention);
    assert!(drain.caught_up);
    assert_eq!(rig.assert_nothing_missing(), 0);
    let first = rig
        .sim
        .requests()
        .into_iter()
        .find(|r| r.path == "/api/v1/logs")
        .unwrap();
    assert!(
        first.query.unwrap().contains("since="),
        "restarted with since, not the dead cursor"
    );
}

#[tokio::test]
async fn backfill_on_setup_seeds_history_on_the_first_poll() {
    let mut config = sim_config(2000, 17);
    config.backlog_span = Duration::from_secs(6 * 3600);
    let rig = Rig::start(config).await;
    let secret = serde_json::json!({"org_url": rig.sim.base_url(), "backfill_on_setup": true,
        "auth": {"type": "ssws", "token": okta_ingest::testkit::rig::SSWS_TOKEN}});
    rig.secrets.set(CONNECTOR, &secret.to_string());
    let summary = rig.poll().await.unwrap();
    let live_fetched = rig.store.snapshot(CONNECTOR).unwrap().delivered_total;
    assert!(
        live_fetched < 500,
        "the live poll only looks back 15 minutes: {live_fetched}"
    );
    let progress = summary
        .backfill
        .as_ref()
        .expect("backfill started on setup");
    assert!(progress.complete, "{summary:?}");
    // Live and backfill overlap by a minute instead of leaving a gap.
    let duplicates = rig.assert_nothing_missing();
    assert!(duplicates < 100, "{duplicates}");
    // The next poll does not start another backfill.
    rig.sim.append_events(50);
    let next = rig.poll().await.unwrap();
    assert_eq!(next.drain.as_ref().unwrap().fetched, 50);
}

#[tokio::test]
async fn polls_continue_an_unfinished_backfill_with_their_spare_time() {
    let mut config = sim_config(3000, 18);
    config.backlog_span = Duration::from_secs(6 * 3600);
    let mut settings = okta_ingest::testkit::rig::test_settings();
    settings.drain.page_limit = 200;
    let rig = Rig::with_settings(config, settings).await;
    rig.poll().await.unwrap();
    // A budget too short to read the window: the backfill stops at its deadline.
    // Slow pages all through the budget, so it ends mid-window whatever the machine's speed.
    rig.sim.inject(Fault::Delay(Duration::from_millis(250)), 10);
    let request = BackfillRequest {
        days: Some(1),
        ..Default::default()
    };
    let first = rig
        .invoke(Action::Backfill(request), Duration::from_millis(1800))
        .await
        .unwrap();
    let progress = first.backfill.as_ref().unwrap();
    assert!(
        !progress.complete && progress.done_fraction < 1.0,
        "{first:?}"
    );
    // Scheduled polls finish it without being asked.
    for _ in 0..5 {
        let poll = rig.poll().await.unwrap();
        if poll.backfill.as_ref().is_some_and(|b| b.complete) {
            break;
        }
    }
    let backfill = rig.backfill_item();
    assert_eq!(
        backfill.cursor.as_deref(),
        Some(okta_ingest::drain::BACKFILL_DONE)
    );
    rig.assert_nothing_missing();
}

#[tokio::test]
async fn a_rate_limited_drain_paces_itself_and_meets_no_429() {
    let mut config = sim_config(1500, 19);
    config.rate_limit = Some(okta_sim::RateLimitConfig {
        limit: 12,
        window: Duration::from_secs(2),
    });
    let mut settings = okta_ingest::testkit::rig::test_settings();
    settings.drain.page_limit = 100;
    let rig = Rig::with_settings(config, settings).await;
    let summary = rig.poll().await.unwrap();
    assert!(summary.drain.as_ref().unwrap().caught_up, "{summary:?}");
    assert_eq!(summary.okta_throttled, 0);
    assert!(
        rig.sim.requests().iter().all(|r| r.status != 429),
        "no request hit the wall"
    );
    assert_eq!(rig.assert_nothing_missing(), 0);
    // A 429 from elsewhere in the org (another app used the bucket) is waited out, not fatal.
    rig.sim.append_events(300);
    rig.sim.inject(Fault::RateLimited, 2);
    let summary = rig.poll().await.unwrap();
    assert_eq!(summary.okta_throttled, 2);
    assert!(summary.drain.as_ref().unwrap().caught_up);
    assert_eq!(rig.assert_nothing_missing(), 0);
}

#[tokio::test]
async fn a_bad_backfill_window_is_refused_before_anything_is_claimed() {
    let rig = Rig::start(sim_config(10, 20)).await;
    let request = BackfillRequest {
        days: Some(120),
        ..Default::default()
    };
    let failed = rig
        .invoke(Action::Backfill(request), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(failed.message.unwrap().contains("between 1 and 90"));
    assert!(rig
        .store
        .snapshot(&okta_ingest::cursor::backfill_key(CONNECTOR))
        .is_none());
    assert!(rig.sim.requests().is_empty());
}

/// A sink whose first publish panics part-way, as a crashing process would.
struct PanicOnceSink {
    inner: Arc<okta_ingest::sink::memory::MemorySink>,
    panicked: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl okta_ingest::sink::EventSink for PanicOnceSink {
    async fn publish(
        &self,
        records: &[okta_ingest::sink::Record],
        deadline: tokio::time::Instant,
    ) -> Result<okta_ingest::sink::PublishStats, okta_ingest::sink::SinkError> {
        if !self
            .panicked
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.inner
                .publish(&records[..records.len() / 2], deadline)
                .await?;
            panic!("process died between publishing and checkpointing");
        }
        self.inner.publish(records, deadline).await
    }
}

#[tokio::test]
async fn a_crash_between_publish_and_checkpoint_loses_nothing() {
    let rig = Rig::start(sim_config(2500, 22)).await;
    let connector = Arc::new(okta_ingest::actions::Connector::new(
        rig.secrets.clone(),
        rig.store.clone(),
        PanicOnceSink {
            inner: rig.sink.clone(),
            panicked: false.into(),
        },
        okta_ingest::testkit::rig::test_settings(),
    ));
    let invocation = okta_ingest::invocation::Invocation {
        connector_id: okta_ingest::invocation::ConnectorId::parse(CONNECTOR).unwrap(),
        action: Action::Poll,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let crashed = {
        let (connector, invocation) = (connector.clone(), invocation.clone());
        tokio::spawn(async move { connector.handle(&invocation, deadline).await.outcome }).await
    };
    assert!(crashed.unwrap_err().is_panic());
    let item = rig.store.snapshot(CONNECTOR).unwrap();
    assert!(item.cursor.is_none(), "nothing was checkpointed");
    assert!(
        item.lease_owner.is_some(),
        "the dead invocation's lease is left to expire"
    );

    // Until it expires, the next invocation stands back; afterwards it takes over.
    let held = connector.handle(&invocation, deadline).await;
    assert_eq!(held.outcome, Outcome::LeaseHeld);
    let expired = okta_ingest::cursor::CursorItem {
        lease_expires_at: Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(1)),
        ..item
    };
    rig.store.seed(expired);
    let resumed = connector.handle(&invocation, deadline).await;
    assert_eq!(resumed.outcome, Outcome::Ok);
    assert!(resumed.drain.as_ref().unwrap().caught_up);
    let duplicates = rig.assert_nothing_missing();
    assert!(
        duplicates > 0 && duplicates < 1000,
        "only the crashed page's records twice: {duplicates}"
    );
}

#[tokio::test]
async fn a_failing_backfill_slice_does_not_fail_the_live_poll() {
    let rig = Rig::start(sim_config(300, 23)).await;
    rig.poll().await.unwrap();
    rig.store.fail_next(CursorOp::Load, 1);
    rig.sim.append_events(20);
    let summary = rig.poll().await.expect("the live part succeeded");
    assert_eq!(summary.drain.as_ref().unwrap().fetched, 20);
    assert!(summary.message.unwrap().contains("backfill slice failed"));
    assert_eq!(
        rig.store.snapshot(CONNECTOR).unwrap().consecutive_failures,
        0
    );
}

#[tokio::test]
async fn a_setup_backfill_that_failed_to_start_is_started_by_the_next_poll() {
    let mut config = sim_config(1500, 24);
    config.backlog_span = Duration::from_secs(4 * 3600);
    let rig = Rig::start(config).await;
    let secret = serde_json::json!({"org_url": rig.sim.base_url(), "backfill_on_setup": true,
        "auth": {"type": "ssws", "token": okta_ingest::testkit::rig::SSWS_TOKEN}});
    rig.secrets.set(CONNECTOR, &secret.to_string());
    rig.store.fail_next(CursorOp::Load, 1);
    let first = rig.poll().await.expect("the live poll succeeded");
    assert!(first.message.unwrap().contains("backfill slice failed"));
    let second = rig.poll().await.unwrap();
    assert!(
        second.backfill.as_ref().is_some_and(|b| b.complete),
        "{second:?}"
    );
    rig.assert_nothing_missing();
}

#[tokio::test]
async fn a_quiet_feed_with_recent_successes_is_not_taken_for_an_aged_out_cursor() {
    let rig = Rig::start(sim_config(400, 25)).await;
    rig.poll().await.unwrap();
    // Only system events for months: nothing published, but every poll succeeded.
    let mut item = rig.store.snapshot(CONNECTOR).unwrap();
    item.newest_published = Some(time::OffsetDateTime::now_utc() - time::Duration::days(120));
    rig.store.seed(item);
    rig.sim.append_events(30);
    let summary = rig.poll().await.unwrap();
    let drain = summary.drain.as_ref().unwrap();
    assert!(!drain.restarted_beyond_retention);
    assert_eq!(drain.fetched, 30, "read on from the cursor");
}

#[tokio::test]
async fn a_lost_cursor_restarts_before_the_newest_delivered_event_not_at_the_look_back() {
    let mut config = sim_config(1000, 26);
    config.backlog_span = Duration::from_secs(3 * 3600);
    let rig = Rig::start(config).await;
    let mut item = okta_ingest::cursor::CursorItem {
        key: CONNECTOR.into(),
        newest_published: Some(time::OffsetDateTime::now_utc() - time::Duration::hours(2)),
        ..Default::default()
    };
    item.version = 4;
    rig.store.seed(item);
    let summary = rig.poll().await.unwrap();
    let fetched = summary.drain.as_ref().unwrap().fetched;
    // About two hours of a three-hour backlog, far more than the 15-minute look-back holds.
    assert!((500..=800).contains(&fetched), "{fetched}");
}

//! The drain loop against the in-memory twins: no HTTP, no simulator.

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use super::*;
use crate::cursor::memory::{CursorOp, MemoryCursorStore};
use crate::cursor::{Claim, CursorError};
use crate::normalize::{CatalogPolicy, NormalizerConfig};
use crate::okta::memory::{sign_in, MemoryLogSource};
use crate::sink::memory::MemorySink;

const KEY: &str = "acme";

struct Twins {
    source: MemoryLogSource,
    store: MemoryCursorStore,
    sink: MemorySink,
    normalizer: Normalizer,
    settings: DrainSettings,
}

impl Twins {
    /// `events` sign-ins published over the last minutes, pages of `limit`.
    fn new(events: usize, limit: u32) -> Twins {
        let now = OffsetDateTime::now_utc();
        let source = MemoryLogSource::new();
        source.append((0..events).map(|n| {
            let published = now - time::Duration::seconds(300) + time::Duration::seconds(n as i64);
            sign_in(&format!("e{n}"), &format!("u{}", n % 3), published)
        }));
        Twins {
            source,
            store: MemoryCursorStore::new(),
            sink: MemorySink::new(),
            normalizer: Normalizer::new(NormalizerConfig {
                org: "memory.okta.test".into(),
                connector_id: KEY.into(),
                policy: CatalogPolicy::Catalog,
                include_raw: false,
            }),
            settings: DrainSettings {
                page_limit: limit,
                lookback: Duration::from_secs(900),
            },
        }
    }

    fn drain<'a>(
        &'a self,
        outputs: &'a [Output<'a, MemorySink>],
    ) -> Drain<'a, MemoryLogSource, MemoryCursorStore, MemorySink> {
        Drain {
            source: &self.source,
            store: &self.store,
            outputs,
            normalizer: &self.normalizer,
            settings: &self.settings,
            // Each test bounds its drain by the deadline it passes to `run`.
            writes_deadline: Instant::now() + Duration::from_secs(3600),
        }
    }

    fn total(&self) -> [Output<'_, MemorySink>; 1] {
        [Output {
            sink: &self.sink,
            format: &Normalized,
        }]
    }

    async fn claim(&self) -> (Lease, CursorItem) {
        let now = OffsetDateTime::now_utc();
        match self
            .store
            .claim(KEY, "me", now, now + time::Duration::minutes(5))
            .await
            .unwrap()
        {
            Claim::Acquired { lease, item } => (lease, item),
            other => panic!("not claimed: {other:?}"),
        }
    }

    async fn run(&self, kind: StreamKind) -> (DrainReport, Option<DrainError>) {
        let claimed = self.claim().await;
        self.run_claimed(claimed, &self.total(), kind, Duration::from_secs(5))
            .await
    }

    /// Drains into `outputs` under the `claimed` lease, for `budget` from now.
    async fn run_claimed<'a>(
        &'a self,
        (mut lease, item): (Lease, CursorItem),
        outputs: &'a [Output<'a, MemorySink>],
        kind: StreamKind,
        budget: Duration,
    ) -> (DrainReport, Option<DrainError>) {
        let deadline = Instant::now() + budget;
        self.drain(outputs)
            .run(&mut lease, &item, kind, deadline)
            .await
    }

    fn published(&self) -> Vec<String> {
        self.sink
            .records()
            .into_iter()
            .map(|r| r.event_id)
            .collect()
    }

    fn cursor(&self) -> Option<String> {
        self.store.snapshot(KEY).and_then(|item| item.cursor)
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("e{n}")).collect()
}

#[tokio::test]
async fn every_page_is_published_in_order_and_checkpointed_until_caught_up() {
    let twins = Twins::new(5, 2);
    let (report, error) = twins.run(StreamKind::Live).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(twins.published(), ids(0..5), "Okta's order, nothing twice");
    assert_eq!(report.stop_reason, Some(StopReason::CaughtUp));
    assert!(report.caught_up);
    assert_eq!((report.fetched, report.published), (5, 5));
    assert_eq!(report.checkpoints, 3, "one per page that moved the cursor");
    let item = twins.store.snapshot(KEY).unwrap();
    assert_eq!(
        item.cursor.as_deref(),
        Some(MemoryLogSource::link_after(5, 2).as_str())
    );
    assert_eq!(item.delivered_total, 5);
}

#[tokio::test]
async fn a_short_page_means_caught_up_so_a_poll_costs_ceil_of_n_plus_one_over_limit() {
    // (events, limit, requests of the first poll)
    for (events, limit, requests) in [(0, 10, 1), (3, 10, 1), (4, 2, 3), (5, 2, 3), (20, 10, 3)] {
        let twins = Twins::new(events, limit);
        let (report, error) = twins.run(StreamKind::Live).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(report.stop_reason, Some(StopReason::CaughtUp));
        assert_eq!(
            twins.source.requests().len(),
            requests,
            "{events} events, limit {limit}"
        );
        assert_eq!(twins.published(), ids(0..events));
        let item = twins.store.snapshot(KEY).unwrap();
        assert_eq!(
            item.cursor.as_deref(),
            Some(MemoryLogSource::link_after(events, limit).as_str()),
            "the short page's next link is checkpointed"
        );

        // An idle poll is one request; events persisted meanwhile arrive through the link.
        twins.store.seed(CursorItem {
            lease_owner: None,
            ..item
        });
        let (report, _) = twins.run(StreamKind::Live).await;
        assert_eq!(report.fetched, 0);
        assert_eq!(twins.source.requests().len(), requests + 1);
        let late = OffsetDateTime::now_utc() - time::Duration::hours(2);
        twins.source.append([sign_in("late", "u0", late)]);
        let (report, _) = twins.run(StreamKind::Live).await;
        assert_eq!(report.published, 1, "a late-persisted event still arrives");
        assert_eq!(twins.source.requests().len(), requests + 2);
    }
}

#[tokio::test]
async fn a_refused_publish_leaves_the_cursor_where_it_was() {
    let twins = Twins::new(5, 2);
    twins.sink.fail_after(3);
    let (report, error) = twins.run(StreamKind::Live).await;
    assert!(matches!(error, Some(DrainError::Sink(_))), "{error:?}");
    assert_eq!(report.stop_reason, Some(StopReason::Failed));
    assert_eq!(report.published, 2, "the first page only");
    // One record of page two landed; the sink's error does not say how many, so the whole
    // page is the bound.
    assert_eq!(report.duplicates_replayed, 2);
    assert_eq!(
        twins.cursor().as_deref(),
        Some(MemoryLogSource::link_after(2, 2).as_str()),
        "the cursor stays at the last acknowledged page"
    );
}

#[tokio::test]
async fn a_failed_fetch_after_progress_keeps_the_acknowledged_pages() {
    let twins = Twins::new(5, 2);
    twins.source.answer_only(2);
    let claimed = twins.claim().await;
    let budget = Duration::from_millis(200);
    let (report, error) = twins
        .run_claimed(claimed, &twins.total(), StreamKind::Live, budget)
        .await;
    assert!(matches!(
        error,
        Some(DrainError::Okta(OktaError::DeadlineExceeded))
    ));
    assert_eq!(report.checkpoints, 2);
    assert_eq!(twins.published(), ids(0..4));
    assert_eq!(
        twins.cursor().as_deref(),
        Some(MemoryLogSource::link_after(4, 2).as_str())
    );
}

#[tokio::test]
async fn a_published_page_is_checkpointed_while_the_prefetch_still_waits() {
    let twins = Twins::new(5, 2);
    // The first page is answered; the prefetch of the second waits (a rate-limit wait, a
    // stalled connection) until the invocation is killed.
    twins.source.answer_only(1);
    let claimed = twins.claim().await;
    let outputs = twins.total();
    let run = twins.run_claimed(claimed, &outputs, StreamKind::Live, Duration::from_secs(60));
    let killed = tokio::time::timeout(Duration::from_millis(300), run).await;
    assert!(killed.is_err(), "the drain was still waiting for page two");
    assert_eq!(twins.published(), ids(0..2));
    assert_eq!(
        twins.cursor().as_deref(),
        Some(MemoryLogSource::link_after(2, 2).as_str()),
        "the cursor is past the published page"
    );
}

#[tokio::test]
async fn a_lost_lease_stops_the_drain_without_moving_the_cursor() {
    let twins = Twins::new(5, 2);
    let claimed = twins.claim().await;
    twins.store.steal_lease(KEY, "thief");
    let budget = Duration::from_secs(5);
    let (report, error) = twins
        .run_claimed(claimed, &twins.total(), StreamKind::Live, budget)
        .await;
    assert!(matches!(
        error,
        Some(DrainError::Cursor(CursorError::LeaseLost { .. }))
    ));
    assert_eq!(report.stop_reason, Some(StopReason::LeaseLost));
    assert_eq!(report.duplicates_replayed, 2, "the page reached the sink");
    assert_eq!(twins.cursor(), None);
}

#[tokio::test]
async fn a_failed_checkpoint_counts_its_page_as_replayed() {
    let twins = Twins::new(3, 2);
    twins.store.fail_next(CursorOp::Checkpoint, 1);
    let (report, error) = twins.run(StreamKind::Live).await;
    assert!(matches!(error, Some(DrainError::Cursor(_))));
    assert_eq!(report.duplicates_replayed, 2);
    assert_eq!(report.checkpoints, 0);
    assert_eq!(twins.cursor(), None);
}

#[tokio::test]
async fn a_backfill_window_ends_with_its_terminal_marker_and_records_the_window() {
    let twins = Twins::new(6, 2);
    let now = OffsetDateTime::now_utc();
    // Events e1..=e3 lie inside the window.
    let window = Window {
        start: now - time::Duration::milliseconds(299_500),
        end: now - time::Duration::milliseconds(296_500),
    };
    let (report, error) = twins.run(StreamKind::Backfill(window)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(report.stop_reason, Some(StopReason::WindowComplete));
    assert_eq!(twins.published(), ids(1..4));
    let item = twins.store.snapshot(KEY).unwrap();
    assert_eq!(item.cursor.as_deref(), Some(BACKFILL_DONE));
    assert_eq!(item.window, Some(window));

    // A completed window is not read again.
    let requests = twins.source.requests().len();
    let (report, _) = twins.run(StreamKind::Backfill(window)).await;
    assert_eq!(report.stop_reason, Some(StopReason::WindowComplete));
    assert_eq!(twins.source.requests().len(), requests);
}

#[tokio::test]
async fn excluded_events_are_counted_and_not_written() {
    let twins = Twins::new(2, 10);
    let mut system = sign_in("sys", "x", OffsetDateTime::now_utc());
    system["actor"]["type"] = "SystemPrincipal".into();
    system["eventType"] = "system.agent.ad.upgrade".into();
    twins.source.append([system]);
    let (report, _) = twins.run(StreamKind::Live).await;
    assert_eq!(report.fetched, 3);
    assert_eq!(report.published, 2);
    assert_eq!(report.excluded_total(), 1, "{:?}", report.excluded);
    assert_eq!(twins.published(), ids(0..2));
}

#[tokio::test]
async fn a_stored_cursor_that_is_not_a_url_fails_before_any_request() {
    let twins = Twins::new(2, 10);
    twins.store.seed(CursorItem {
        key: KEY.into(),
        cursor: Some("not a url".into()),
        ..CursorItem::default()
    });
    let (_, error) = twins.run(StreamKind::Live).await;
    assert!(matches!(error, Some(DrainError::BadStoredCursor { .. })));
    assert!(twins.source.requests().is_empty());
}

/// TOTAL into one sink and OCSF into another, as a connector with `"outputs": ["total", "ocsf"]`.
async fn run_both(twins: &Twins, ocsf: &MemorySink) -> (DrainReport, Option<DrainError>) {
    let outputs = [
        Output {
            sink: &twins.sink,
            format: &Normalized,
        },
        Output {
            sink: ocsf,
            format: &Ocsf,
        },
    ];
    let claimed = twins.claim().await;
    twins
        .run_claimed(claimed, &outputs, StreamKind::Live, Duration::from_secs(5))
        .await
}

#[tokio::test]
async fn both_outputs_get_every_page_in_order_in_their_own_format() {
    let twins = Twins::new(5, 2);
    let ocsf = MemorySink::new();
    let (report, error) = run_both(&twins, &ocsf).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(twins.published(), ids(0..5));
    let ocsf_records = ocsf.records();
    let ocsf_ids: Vec<String> = ocsf_records.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ocsf_ids, ids(0..5));
    let first: serde_json::Value = serde_json::from_slice(&ocsf_records[0].data).unwrap();
    assert_eq!(first["class_uid"], 3002);
    assert!(ocsf_records[0].partition_key.starts_with("3002:"));
    assert_eq!(report.published, 5, "events, not records of both outputs");
    assert_eq!(report.checkpoints, 3);
}

#[tokio::test]
async fn a_refused_ocsf_publish_holds_the_cursor_for_both_outputs() {
    let twins = Twins::new(5, 2);
    let ocsf = MemorySink::new();
    ocsf.fail_after(3);
    let (report, error) = run_both(&twins, &ocsf).await;
    assert!(matches!(error, Some(DrainError::Sink(_))), "{error:?}");
    assert_eq!(report.published, 2, "the first page only");
    assert_eq!(
        twins.cursor().as_deref(),
        Some(MemoryLogSource::link_after(2, 2).as_str()),
        "TOTAL acknowledged page two, OCSF did not: the cursor stays"
    );
    // Page two replays: the TOTAL copy that landed and the OCSF bound (its whole page).
    assert_eq!(report.duplicates_replayed, 4);
}

//! The cursor store contract as executable checks, run against every implementation (memory,
//! file, and DynamoDB under moto) so all of them keep exactly the same semantics.
//! Each check uses its own item key, so all of them can share one store.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{
    Checkpoint, Claim, CursorError, CursorItem, CursorStore, Lease, Pause, PausedBy, RunOutcome,
    Window,
};

/// A fixed, millisecond-precise start time (what every store can represent exactly).
pub fn t0() -> OffsetDateTime {
    datetime!(2026-03-01 12:00:00.250 UTC)
}

/// A checkpoint for a page of `delivered` events ending at `cursor`.
pub fn page(cursor: &str, delivered: u64) -> Checkpoint {
    Checkpoint {
        cursor: cursor.to_owned(),
        newest_published: None,
        delivered,
        window: None,
    }
}

/// A failed run's outcome; `pause_now` for failures retrying cannot heal.
fn failed_run(error: impl Into<String>, pause_now: bool) -> RunOutcome {
    RunOutcome::Failure {
        error: error.into(),
        pause_now,
    }
}

fn operator_pause(reason: &str, at: OffsetDateTime) -> Pause {
    Pause {
        reason: reason.into(),
        by: PausedBy::Operator,
        at,
    }
}

async fn acquire(store: &dyn CursorStore, key: &str, owner: &str, now: OffsetDateTime) -> Lease {
    match store
        .claim(key, owner, now, now + Duration::minutes(15))
        .await
        .expect("claim")
    {
        Claim::Acquired { lease, .. } => lease,
        other => panic!("{owner} could not claim {key}: {other:?}"),
    }
}

async fn item(store: &dyn CursorStore, key: &str) -> CursorItem {
    store.load(key).await.expect("load").expect("item exists")
}

/// Runs every check in sequence; panics with the failing behaviour's name.
pub async fn run_all(store: &dyn CursorStore) {
    claim_creates_the_item_and_returns_the_lease(store).await;
    overlapping_claim_sees_the_lease_held_until_it_expires(store).await;
    owner_can_reclaim_its_own_lease(store).await;
    checkpoint_moves_cursor_and_accumulates(store).await;
    stale_lease_copy_cannot_checkpoint(store).await;
    release_success_resets_failures_and_frees_lease(store).await;
    failures_pause_the_connector_at_the_threshold(store).await;
    pause_now_pauses_on_the_first_failure(store).await;
    operator_pause_blocks_claims_and_resume_clears_failures(store).await;
    operator_pause_during_a_run_is_kept_at_release(store).await;
}

pub async fn claim_creates_the_item_and_returns_the_lease(store: &dyn CursorStore) {
    let key = "claim-creates";
    assert_eq!(store.load(key).await.unwrap(), None);
    let now = t0();
    let until = now + Duration::minutes(15);
    let Claim::Acquired { lease, item } = store.claim(key, "a", now, until).await.unwrap() else {
        panic!("a fresh item must be claimable");
    };
    assert_eq!(lease.key, key);
    assert_eq!(lease.owner, "a");
    assert_eq!(lease.expires_at, until);
    assert_eq!(lease.version, item.version);
    assert!(item.version >= 1);
    assert_eq!(item.key, key);
    assert_eq!(item.cursor, None);
    assert_eq!(item.lease_owner.as_deref(), Some("a"));
    assert_eq!(item.lease_expires_at, Some(until));
    assert_eq!(item.consecutive_failures, 0);
    assert_eq!(item.paused, None);
}

pub async fn overlapping_claim_sees_the_lease_held_until_it_expires(store: &dyn CursorStore) {
    let key = "claim-held";
    let now = t0();
    acquire(store, key, "a", now).await;
    let held = store
        .claim(
            key,
            "b",
            now + Duration::minutes(1),
            now + Duration::minutes(16),
        )
        .await
        .unwrap();
    assert_eq!(
        held,
        Claim::Held {
            owner: "a".into(),
            until: now + Duration::minutes(15)
        }
    );
    let after_expiry = now + Duration::minutes(20);
    let lease = acquire(store, key, "b", after_expiry).await;
    assert_eq!(lease.owner, "b");
}

pub async fn owner_can_reclaim_its_own_lease(store: &dyn CursorStore) {
    let key = "claim-own";
    let now = t0();
    let first = acquire(store, key, "a", now).await;
    let second = acquire(store, key, "a", now + Duration::seconds(1)).await;
    assert!(second.version > first.version);
}

pub async fn checkpoint_moves_cursor_and_accumulates(store: &dyn CursorStore) {
    let key = "checkpoint";
    let now = t0();
    let mut lease = acquire(store, key, "a", now).await;
    let window = Window {
        start: now - Duration::days(90),
        end: now,
    };
    let newer = now - Duration::minutes(1);
    let older = now - Duration::minutes(5);
    let first = Checkpoint {
        cursor: "https://acme.okta.com/api/v1/logs?after=1".into(),
        newest_published: Some(newer),
        delivered: 3,
        window: Some(window),
    };
    let before = lease.version;
    store.checkpoint(&mut lease, &first, now).await.unwrap();
    assert!(
        lease.version > before,
        "checkpoint must bump the lease version"
    );
    let second = Checkpoint {
        cursor: "https://acme.okta.com/api/v1/logs?after=2".into(),
        newest_published: Some(older),
        delivered: 4,
        window: None,
    };
    store.checkpoint(&mut lease, &second, now).await.unwrap();
    let stored = item(store, key).await;
    assert_eq!(stored.cursor.as_deref(), Some(second.cursor.as_str()));
    assert_eq!(
        stored.newest_published,
        Some(newer),
        "newest_published keeps the max"
    );
    assert_eq!(stored.delivered_total, 7);
    assert_eq!(stored.window, Some(window));
    assert_eq!(stored.version, lease.version);
    assert_eq!(stored.updated_at, Some(now));
}

pub async fn stale_lease_copy_cannot_checkpoint(store: &dyn CursorStore) {
    let key = "fenced";
    let now = t0();
    let mut lease = acquire(store, key, "a", now).await;
    let mut stale = lease.clone();
    store
        .checkpoint(&mut lease, &page("cursor-1", 1), now)
        .await
        .unwrap();
    let err = store
        .checkpoint(&mut stale, &page("cursor-stale", 1), now)
        .await
        .unwrap_err();
    assert!(matches!(err, CursorError::LeaseLost { .. }), "{err}");
    let err = store
        .release(&stale, &RunOutcome::Success, 5, now)
        .await
        .unwrap_err();
    assert!(matches!(err, CursorError::LeaseLost { .. }), "{err}");
    let stored = item(store, key).await;
    assert_eq!(stored.cursor.as_deref(), Some("cursor-1"));
    assert_eq!(stored.delivered_total, 1);
    // A takeover after expiry fences the first owner out as well.
    let taker = acquire(store, key, "b", now + Duration::hours(1)).await;
    let err = store
        .checkpoint(&mut lease, &page("cursor-late", 1), now)
        .await
        .unwrap_err();
    assert!(matches!(err, CursorError::LeaseLost { .. }), "{err}");
    assert_eq!(
        item(store, key).await.lease_owner.as_deref(),
        Some(taker.owner.as_str())
    );
}

pub async fn release_success_resets_failures_and_frees_lease(store: &dyn CursorStore) {
    let key = "release-success";
    let now = t0();
    let lease = acquire(store, key, "a", now).await;
    let failure = failed_run("Okta answered 503", false);
    let after_failure = store.release(&lease, &failure, 5, now).await.unwrap();
    assert_eq!(after_failure.consecutive_failures, 1);
    assert_eq!(
        after_failure.last_error.as_deref(),
        Some("Okta answered 503")
    );
    assert_eq!(after_failure.lease_owner, None);
    let later = now + Duration::minutes(1);
    let lease = acquire(store, key, "b", later).await;
    let released = store
        .release(&lease, &RunOutcome::Success, 5, later)
        .await
        .unwrap();
    assert_eq!(released.consecutive_failures, 0);
    assert_eq!(released.last_error, None);
    assert_eq!(released.last_success_at, Some(later));
    assert_eq!(released.lease_owner, None);
    assert_eq!(released.lease_expires_at, None);
    assert_eq!(released, item(store, key).await);
}

pub async fn failures_pause_the_connector_at_the_threshold(store: &dyn CursorStore) {
    let key = "failure-threshold";
    let mut now = t0();
    for attempt in 1..=3u32 {
        // A different owner each time: the count must come from the item, not the invocation.
        let lease = acquire(store, key, &format!("run-{attempt}"), now).await;
        let outcome = failed_run(format!("timeout #{attempt}"), false);
        let released = store.release(&lease, &outcome, 3, now).await.unwrap();
        assert_eq!(released.consecutive_failures, attempt);
        assert_eq!(released.paused.is_some(), attempt == 3, "attempt {attempt}");
        now += Duration::minutes(1);
    }
    match store
        .claim(key, "run-4", now, now + Duration::minutes(15))
        .await
        .unwrap()
    {
        Claim::Paused(pause) => {
            assert_eq!(pause.by, PausedBy::Connector);
            assert!(
                pause.reason.contains("3 consecutive failures"),
                "{}",
                pause.reason
            );
            assert!(pause.reason.contains("timeout #3"), "{}", pause.reason);
        }
        other => panic!("a paused connector must not be claimable: {other:?}"),
    }
}

pub async fn pause_now_pauses_on_the_first_failure(store: &dyn CursorStore) {
    let key = "pause-now";
    let now = t0();
    let lease = acquire(store, key, "a", now).await;
    let outcome = failed_run("invalid_client: the app was deactivated", true);
    let released = store.release(&lease, &outcome, 5, now).await.unwrap();
    assert_eq!(released.consecutive_failures, 1);
    let pause = released.paused.expect("pause_now pauses");
    assert_eq!(pause.by, PausedBy::Connector);
    assert_eq!(pause.at, now);
    assert!(pause.reason.contains("invalid_client"), "{}", pause.reason);
}

pub async fn operator_pause_blocks_claims_and_resume_clears_failures(store: &dyn CursorStore) {
    let key = "operator";
    let now = t0();
    let pause = operator_pause("maintenance", now);
    let paused = store
        .set_pause(key, Some(pause.clone()), now)
        .await
        .unwrap();
    assert_eq!(
        paused.paused,
        Some(pause.clone()),
        "set_pause creates the item"
    );
    assert_eq!(
        store
            .claim(key, "a", now, now + Duration::minutes(15))
            .await
            .unwrap(),
        Claim::Paused(pause)
    );
    let resumed = store.set_pause(key, None, now).await.unwrap();
    assert_eq!(resumed.paused, None);
    let mut lease = acquire(store, key, "a", now).await;
    store
        .checkpoint(&mut lease, &page("kept-cursor", 2), now)
        .await
        .unwrap();
    let failure = failed_run("503", false);
    store.release(&lease, &failure, 5, now).await.unwrap();
    let resumed = store.set_pause(key, None, now).await.unwrap();
    assert_eq!(
        resumed.consecutive_failures, 0,
        "resume clears the failure count"
    );
    assert_eq!(
        resumed.cursor.as_deref(),
        Some("kept-cursor"),
        "resume keeps the cursor"
    );
}

pub async fn operator_pause_during_a_run_is_kept_at_release(store: &dyn CursorStore) {
    let key = "operator-mid-run";
    let now = t0();
    let mut lease = acquire(store, key, "a", now).await;
    let pause = operator_pause("disabled by operator", now);
    let paused = store
        .set_pause(key, Some(pause.clone()), now)
        .await
        .unwrap();
    assert_eq!(
        paused.lease_owner.as_deref(),
        Some("a"),
        "set_pause leaves the lease"
    );
    store
        .checkpoint(&mut lease, &page("finished-page", 1), now)
        .await
        .expect("the running invocation finishes its page");
    let failure = failed_run("boom", true);
    let released = store.release(&lease, &failure, 5, now).await.unwrap();
    assert_eq!(released.paused, Some(pause));
}

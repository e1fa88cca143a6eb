//! In-memory cursor store: the DynamoDB store's semantics without a network, plus hooks that
//! inject the faults the resilience tests need (throttling, lost responses, stolen leases).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::local::ItemSlots;
pub use super::CursorOp;
use super::{CursorError, CursorItem};

#[derive(Debug, Default)]
struct State {
    items: HashMap<String, CursorItem>,
    /// Calls that fail before anything is written (throttling, a 5xx).
    fail_before: HashMap<CursorOp, u32>,
    /// Calls whose write lands but whose answer is lost (a timeout after the service applied it).
    fail_after: HashMap<CursorOp, u32>,
}

#[derive(Debug, Default)]
pub struct MemoryCursorStore {
    state: Mutex<State>,
}

fn take_one(counts: &mut HashMap<CursorOp, u32>, op: CursorOp) -> bool {
    match counts.get_mut(&op) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

fn injected(key: &str, op: CursorOp, when: &str) -> CursorError {
    CursorError::Service {
        key: key.to_owned(),
        message: format!(
            "injected fault on {op:?} ({when}): ProvisionedThroughputExceededException, retry later"
        ),
    }
}

impl MemoryCursorStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` calls of `op` fail with a throttling error before writing anything.
    pub fn fail_next(&self, op: CursorOp, n: u32) {
        *self.lock().fail_before.entry(op).or_default() += n;
    }

    /// The next `n` calls of `op` write, then report a service error as if the answer was lost.
    pub fn lose_next_response(&self, op: CursorOp, n: u32) {
        *self.lock().fail_after.entry(op).or_default() += n;
    }

    /// Another invocation takes the lease over, as after an expiry; the holder's fence breaks.
    pub fn steal_lease(&self, key: &str, new_owner: &str) {
        let mut state = self.lock();
        let item = state
            .items
            .entry(key.to_owned())
            .or_insert_with(|| CursorItem {
                key: key.to_owned(),
                ..CursorItem::default()
            });
        let an_hour_from_now = OffsetDateTime::now_utc() + Duration::hours(1);
        item.lease_expires_at = Some(
            item.lease_expires_at
                .map_or(an_hour_from_now, |t| t.max(an_hour_from_now)),
        );
        item.lease_owner = Some(new_owner.to_owned());
        item.version += 1;
    }

    /// Replaces (or creates) an item as stored, e.g. to start a test from a given cursor.
    pub fn seed(&self, item: CursorItem) {
        self.lock().items.insert(item.key.clone(), item);
    }

    pub fn snapshot(&self, key: &str) -> Option<CursorItem> {
        self.lock().items.get(key).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic in another test thread must not hide this store's state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ItemSlots for MemoryCursorStore {
    /// Runs one operation on the item's slot, with the injected faults around it.
    async fn apply<T, F>(&self, key: &str, op: CursorOp, write: F) -> Result<T, CursorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError> + Send + 'static,
    {
        let mut state = self.lock();
        if take_one(&mut state.fail_before, op) {
            return Err(injected(key, op, "nothing written"));
        }
        let mut slot = state.items.remove(key);
        let result = write(&mut slot);
        if let Some(item) = slot {
            state.items.insert(key.to_owned(), item);
        }
        if result.is_ok() && take_one(&mut state.fail_after, op) {
            return Err(injected(key, op, "write applied, answer lost"));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::{conformance, Claim, CursorStore, Lease, RunOutcome};

    #[tokio::test]
    async fn behaves_like_a_cursor_store() {
        conformance::run_all(&MemoryCursorStore::new()).await;
    }

    #[tokio::test]
    async fn stolen_lease_cannot_checkpoint_or_release() {
        let store = MemoryCursorStore::new();
        let now = conformance::t0();
        let Claim::Acquired { mut lease, .. } = store
            .claim("acme", "a", now, now + Duration::minutes(15))
            .await
            .unwrap()
        else {
            panic!("fresh item must be claimable");
        };
        store.steal_lease("acme", "b");
        let err = store
            .checkpoint(&mut lease, &conformance::page("next-1", 3), now)
            .await
            .unwrap_err();
        assert!(matches!(err, CursorError::LeaseLost { .. }));
        let err = store
            .release(&lease, &RunOutcome::Success, 5, now)
            .await
            .unwrap_err();
        assert!(matches!(err, CursorError::LeaseLost { .. }));
        let item = store.snapshot("acme").unwrap();
        assert_eq!(item.cursor, None);
        assert_eq!(item.lease_owner.as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn injected_failure_writes_nothing_and_then_clears() {
        let store = MemoryCursorStore::new();
        let now = conformance::t0();
        store.fail_next(CursorOp::Claim, 1);
        let err = store
            .claim("acme", "a", now, now + Duration::minutes(1))
            .await
            .unwrap_err();
        assert!(matches!(err, CursorError::Service { .. }));
        assert_eq!(store.snapshot("acme"), None);
        assert!(matches!(
            store
                .claim("acme", "a", now, now + Duration::minutes(1))
                .await
                .unwrap(),
            Claim::Acquired { .. }
        ));
    }

    async fn claimed(store: &MemoryCursorStore) -> Lease {
        let now = conformance::t0();
        match store
            .claim("acme", "a", now, now + Duration::minutes(1))
            .await
            .unwrap()
        {
            Claim::Acquired { lease, .. } => lease,
            other => panic!("fresh item must be claimable: {other:?}"),
        }
    }

    #[tokio::test]
    async fn lost_answer_applies_the_write_and_reading_the_item_proves_it_ours() {
        let store = MemoryCursorStore::new();
        let now = conformance::t0();
        let mut lease = claimed(&store).await;
        store.lose_next_response(CursorOp::Checkpoint, 1);
        let before = lease.version;
        store
            .checkpoint(&mut lease, &conformance::page("next-1", 2), now)
            .await
            .expect("the item holds exactly what was written");
        let item = store.snapshot("acme").unwrap();
        assert_eq!(item.cursor.as_deref(), Some("next-1"));
        assert_eq!(item.version, before + 1);
        assert_eq!(lease.version, item.version);
        store.lose_next_response(CursorOp::Release, 1);
        let released = store
            .release(&lease, &RunOutcome::Success, 5, now)
            .await
            .expect("the release landed");
        assert_eq!(released.lease_owner, None);
    }

    #[tokio::test]
    async fn lost_answer_that_cannot_be_checked_leaves_the_callers_lease_behind() {
        let store = MemoryCursorStore::new();
        let now = conformance::t0();
        let mut lease = claimed(&store).await;
        store.lose_next_response(CursorOp::Checkpoint, 1);
        store.fail_next(CursorOp::Load, 1);
        let before = lease.version;
        assert!(store
            .checkpoint(&mut lease, &conformance::page("next-1", 2), now)
            .await
            .is_err());
        assert_eq!(store.snapshot("acme").unwrap().version, before + 1);
        assert_eq!(lease.version, before, "the caller never saw the answer");
    }

    #[tokio::test]
    async fn lost_claim_answer_is_still_a_claim() {
        let store = MemoryCursorStore::new();
        store.lose_next_response(CursorOp::Claim, 1);
        let lease = claimed(&store).await;
        assert_eq!(lease.version, store.snapshot("acme").unwrap().version);
    }

    #[tokio::test]
    async fn a_checkpoint_refused_for_someone_elses_write_is_not_taken_for_ours() {
        let store = MemoryCursorStore::new();
        let now = conformance::t0();
        let mut lease = claimed(&store).await;
        let mut stale = lease.clone();
        store
            .checkpoint(&mut lease, &conformance::page("next-1", 2), now)
            .await
            .unwrap();
        // Same owner, one version on, but not the cursor this stale copy writes.
        let err = store
            .checkpoint(&mut stale, &conformance::page("next-other", 2), now)
            .await
            .unwrap_err();
        assert!(matches!(err, CursorError::LeaseLost { .. }), "{err}");
    }
}

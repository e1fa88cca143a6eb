//! The stores that hold their items in this process or on this machine (memory, file). Each
//! only provides an atomic read-modify-write of one item's slot; the cursor rules and the
//! [`CursorStore`] methods are written once, here, on top of it.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    ambiguous, rules, Checkpoint, Claim, CursorError, CursorItem, CursorStore, Lease, Pause,
    RunOutcome,
};

/// A store operation, to aim injected faults at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CursorOp {
    Load,
    Claim,
    Checkpoint,
    Release,
    SetPause,
}

/// Atomic access to one item: `rule` sees the stored item (or `None`) and may change it; the
/// change is kept only as a whole. `op` names the operation (the memory twin aims faults by it).
#[async_trait]
pub trait ItemSlots: Send + Sync {
    async fn apply<T, F>(&self, key: &str, op: CursorOp, rule: F) -> Result<T, CursorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError> + Send + 'static;
}

#[async_trait]
impl<S: ItemSlots> CursorStore for S {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError> {
        self.apply(key, CursorOp::Load, |slot| Ok(slot.clone()))
            .await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError> {
        let (item_key, me) = (key.to_owned(), owner.to_owned());
        match self
            .apply(key, CursorOp::Claim, move |slot| {
                Ok(rules::claim(slot, &item_key, &me, now, lease_until))
            })
            .await
        {
            Err(error) => {
                let item =
                    ambiguous::resolve(self, key, error, |item| rules::claim_landed(item, owner))
                        .await?;
                Ok(rules::acquired(item, lease_until))
            }
            claim => claim,
        }
    }

    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError> {
        // The caller's lease moves only once the write is known to have landed.
        let (mut moved, owned) = (lease.clone(), update.clone());
        let written = self
            .apply(&lease.key, CursorOp::Checkpoint, move |slot| {
                rules::checkpoint(slot, &mut moved, &owned, now).map(|()| moved)
            })
            .await;
        match written {
            Ok(moved) => *lease = moved,
            Err(error) => {
                let item = ambiguous::resolve(self, &lease.key, error, |item| {
                    rules::checkpoint_landed(item, lease, update)
                })
                .await?;
                lease.version = item.version;
            }
        }
        Ok(())
    }

    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        let (held, owned) = (lease.clone(), outcome.clone());
        match self
            .apply(&lease.key, CursorOp::Release, move |slot| {
                rules::release(slot, &held, &owned, pause_after, now)
            })
            .await
        {
            Err(error) => {
                ambiguous::resolve(self, &lease.key, error, |item| {
                    rules::release_landed(item, lease, outcome)
                })
                .await
            }
            released => released,
        }
    }

    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        let item_key = key.to_owned();
        self.apply(key, CursorOp::SetPause, move |slot| {
            Ok(rules::set_pause(slot, &item_key, pause, now))
        })
        .await
    }
}

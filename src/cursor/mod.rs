//! The connector's cursor item: where the stream stands, who holds the lease, and whether the
//! connector is paused. One item per connector ([`live_key`]) and one per backfill
//! ([`backfill_key`]).

mod ambiguous;
/// The contract checks every store passes; test support, so never in the Lambda artifact.
#[cfg(any(test, feature = "testkit"))]
pub mod conformance;
pub mod dynamodb;
pub mod file;
mod local;
/// The in-memory twin: test support, so never in the Lambda artifact.
#[cfg(any(test, feature = "testkit"))]
pub mod memory;
mod rules;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use local::CursorOp;

/// The key of a connector's live cursor item.
pub fn live_key(connector_id: &str) -> String {
    connector_id.to_owned()
}

/// The key of a connector's historical backfill item, separate from the live one.
pub fn backfill_key(connector_id: &str) -> String {
    format!("{connector_id}#backfill")
}

/// The stored state of one cursor item. Its serde form is the local state file's (the key is
/// the map key there); DynamoDB attributes are mapped in [`dynamodb`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorItem {
    #[serde(skip)]
    pub key: String,
    /// The Okta `next` link to fetch from; `None` before the first checkpoint.
    pub cursor: Option<String>,
    /// Incremented on every write; checkpoints are fenced on it.
    pub version: u64,
    pub lease_owner: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    pub consecutive_failures: u32,
    pub paused: Option<Pause>,
    pub last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    /// Newest `published` among the events delivered so far.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub newest_published: Option<OffsetDateTime>,
    /// Events delivered through this item since it was created.
    pub delivered_total: u64,
    /// Backfill items only: the time window being pulled.
    pub window: Option<Window>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub reason: String,
    pub by: PausedBy,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum PausedBy {
    /// The `disable` action.
    Operator,
    /// Too many consecutive failures, or a failure that retrying cannot heal.
    Connector,
}

impl PausedBy {
    const ALL: [PausedBy; 2] = [PausedBy::Operator, PausedBy::Connector];

    /// The stored form, in every store and in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            PausedBy::Operator => "operator",
            PausedBy::Connector => "connector",
        }
    }

    pub fn parse(text: &str) -> Option<PausedBy> {
        Self::ALL.into_iter().find(|by| by.as_str() == text)
    }

    /// The stored forms, for error messages: `"operator" or "connector"`.
    pub fn choices() -> String {
        let quoted: Vec<String> = Self::ALL
            .iter()
            .map(|by| format!("{:?}", by.as_str()))
            .collect();
        quoted.join(" or ")
    }
}

impl From<PausedBy> for &'static str {
    fn from(by: PausedBy) -> Self {
        by.as_str()
    }
}

impl TryFrom<String> for PausedBy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        PausedBy::parse(&text)
            .ok_or_else(|| format!("paused_by is {text:?}; expected {}", PausedBy::choices()))
    }
}

/// Proof of holding an item's lease; its `version` moves with every checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub owner: String,
    pub version: u64,
    pub expires_at: OffsetDateTime,
}

// One claim per invocation: boxing the item would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Acquired {
        lease: Lease,
        item: CursorItem,
    },
    /// Another invocation holds an unexpired lease.
    Held {
        owner: String,
        until: OffsetDateTime,
    },
    Paused(Pause),
}

/// What a checkpoint writes after a page was fully acknowledged by the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub cursor: String,
    pub newest_published: Option<OffsetDateTime>,
    /// Events delivered by the page being checkpointed (added to `delivered_total`).
    pub delivered: u64,
    /// Set on the first checkpoint of a backfill.
    pub window: Option<Window>,
}

/// How an invocation ended, recorded when the lease is released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    Success,
    /// `pause_now` for failures that retrying cannot heal (revoked credentials).
    Failure {
        error: String,
        pause_now: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// The lease was taken over or the item changed under us: nothing was written.
    #[error("lease on cursor item {key} was lost (taken over or expired); nothing was written")]
    LeaseLost { key: String },
    #[error("cursor item {key} is malformed: {detail}")]
    Malformed { key: String, detail: String },
    #[error("cursor store failed for {key}: {message}")]
    Service { key: String, message: String },
    /// Cut at the invocation's deadline: the write may or may not have landed. The cursor is
    /// never ahead of what was acknowledged either way, and the lease expires by itself.
    #[error("the {operation} of cursor item {key} did not answer before the invocation's deadline; the lease expires by itself")]
    Unanswered {
        key: String,
        operation: &'static str,
    },
}

#[async_trait]
pub trait CursorStore: Send + Sync {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError>;

    /// One conditional write: succeeds when the item is absent, free, expired or already ours,
    /// and not paused. Creates the item when absent.
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError>;

    /// Moves the cursor, fenced on `lease.owner` and `lease.version`; bumps `lease.version`.
    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError>;

    /// Gives the lease up and records the outcome: success resets `consecutive_failures`;
    /// failure increments it and pauses the connector at `pause_after` (or at once with
    /// `pause_now`). Fenced like `checkpoint`.
    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError>;

    /// Operator pause (`Some`) or resume (`None`, which also clears the failure count).
    /// Not fenced: it works while an invocation holds the lease, which then stops at its
    /// next claim. Creates the item when absent.
    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError>;
}

#[async_trait]
impl<T: CursorStore + ?Sized> CursorStore for std::sync::Arc<T> {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError> {
        (**self).load(key).await
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError> {
        (**self).claim(key, owner, now, lease_until).await
    }

    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError> {
        (**self).checkpoint(lease, update, now).await
    }

    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        (**self).release(lease, outcome, pause_after, now).await
    }

    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        (**self).set_pause(key, pause, now).await
    }
}

//! Fenced writes whose answer is unknown. A write can be applied while its answer is lost (a
//! timeout, a dropped connection); the SDK's retry then fails its condition because the version
//! already moved, or the retries run out. Either way the store cannot tell from the error alone
//! whether the write landed, so it asks the item: a consistent read that holds exactly what the
//! write wrote means it is ours, and the caller goes on as if the answer had arrived.

use super::{CursorError, CursorItem, CursorStore};

/// The item when `landed` recognises our write in it; otherwise the original error (also when
/// the read itself fails: the caller then handles the write as failed, which is always safe).
pub(crate) async fn resolve<S: CursorStore + ?Sized>(
    store: &S,
    key: &str,
    error: CursorError,
    landed: impl FnOnce(&CursorItem) -> bool,
) -> Result<CursorItem, CursorError> {
    if matches!(error, CursorError::Malformed { .. }) {
        return Err(error);
    }
    match store.load(key).await {
        Ok(Some(item)) if landed(&item) => {
            tracing::info!(key, %error, "the write had landed although its answer was lost");
            Ok(item)
        }
        _ => Err(error),
    }
}

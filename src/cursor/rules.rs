//! The cursor item's state rules, applied in memory by the in-memory and file stores so both
//! behave exactly like the DynamoDB conditional writes.

use time::OffsetDateTime;

use super::{Checkpoint, Claim, CursorError, CursorItem, Lease, Pause, PausedBy, RunOutcome};

/// Longest `last_error` kept in the item; enough for a diagnosis, small enough for any store.
pub(crate) const MAX_LAST_ERROR_CHARS: usize = 512;

/// Whether a failure count reached the self-pause threshold.
pub(crate) fn reaches_pause_threshold(failures: u32, pause_after: u32) -> bool {
    failures >= pause_after
}

/// The stored form of an error message: credentials redacted, bounded length.
///
/// Errors reach the item from many layers; redacting here means a token that slipped into a
/// message still never lands in the table.
pub(crate) fn stored_error(message: &str) -> String {
    let mut words = Vec::new();
    let mut redact_next = false;
    for word in message.split_whitespace() {
        let lower = word.to_ascii_lowercase();
        if redact_next || word.starts_with("eyJ") {
            words.push("<redacted>");
        } else {
            words.push(word);
        }
        redact_next = matches!(
            lower.trim_end_matches(':'),
            "bearer" | "ssws" | "dpop" | "authorization"
        );
    }
    let joined = words.join(" ");
    match joined.char_indices().nth(MAX_LAST_ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// The pause reason recorded when a failed run pauses the connector.
pub(crate) fn failure_pause_reason(error: &str, pause_now: bool, pause_after: u32) -> String {
    if pause_now {
        format!("paused: failure that retrying cannot heal: {error}")
    } else {
        format!("paused after {pause_after} consecutive failures; last error: {error}")
    }
}

fn new_item(key: &str) -> CursorItem {
    CursorItem {
        key: key.to_owned(),
        ..CursorItem::default()
    }
}

/// Why `owner` may not claim the item now (paused, or leased to someone else until a later
/// time); `None` when the claim may proceed.
pub(crate) fn claim_refusal(item: &CursorItem, owner: &str, now: OffsetDateTime) -> Option<Claim> {
    if let Some(pause) = &item.paused {
        return Some(Claim::Paused(pause.clone()));
    }
    match (&item.lease_owner, item.lease_expires_at) {
        (Some(holder), Some(until)) if holder != owner && until > now => Some(Claim::Held {
            owner: holder.clone(),
            until,
        }),
        _ => None,
    }
}

/// Claims the lease when free, expired or already ours, and the item is not paused.
pub(crate) fn claim(
    slot: &mut Option<CursorItem>,
    key: &str,
    owner: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Claim {
    let item = slot.get_or_insert_with(|| new_item(key));
    if let Some(refusal) = claim_refusal(item, owner, now) {
        return refusal;
    }
    item.lease_owner = Some(owner.to_owned());
    item.lease_expires_at = Some(lease_until);
    item.version += 1;
    item.updated_at = Some(now);
    acquired(item.clone(), lease_until)
}

/// The claim's answer for an item that our claim wrote.
pub(crate) fn acquired(item: CursorItem, lease_until: OffsetDateTime) -> Claim {
    let lease = Lease {
        key: item.key.clone(),
        owner: item.lease_owner.clone().unwrap_or_default(),
        version: item.version,
        expires_at: item.lease_expires_at.unwrap_or(lease_until),
    };
    Claim::Acquired { lease, item }
}

/// The fence: the item is still ours and nobody wrote it since our last write.
fn fenced<'a>(
    slot: &'a mut Option<CursorItem>,
    lease: &Lease,
) -> Result<&'a mut CursorItem, CursorError> {
    match slot {
        Some(item)
            if item.lease_owner.as_deref() == Some(lease.owner.as_str())
                && item.version == lease.version =>
        {
            Ok(item)
        }
        _ => Err(CursorError::LeaseLost {
            key: lease.key.clone(),
        }),
    }
}

pub(crate) fn checkpoint(
    slot: &mut Option<CursorItem>,
    lease: &mut Lease,
    update: &Checkpoint,
    now: OffsetDateTime,
) -> Result<(), CursorError> {
    let item = fenced(slot, lease)?;
    item.cursor = Some(update.cursor.clone());
    if let Some(published) = update.newest_published {
        item.newest_published = Some(
            item.newest_published
                .map_or(published, |p| p.max(published)),
        );
    }
    item.delivered_total += update.delivered;
    if update.window.is_some() {
        item.window = update.window;
    }
    item.version += 1;
    item.updated_at = Some(now);
    lease.version = item.version;
    Ok(())
}

pub(crate) fn release(
    slot: &mut Option<CursorItem>,
    lease: &Lease,
    outcome: &RunOutcome,
    pause_after: u32,
    now: OffsetDateTime,
) -> Result<CursorItem, CursorError> {
    let item = fenced(slot, lease)?;
    item.lease_owner = None;
    item.lease_expires_at = None;
    match outcome {
        RunOutcome::Success => {
            item.consecutive_failures = 0;
            item.last_success_at = Some(now);
            item.last_error = None;
        }
        RunOutcome::Failure { error, pause_now } => {
            let error = stored_error(error);
            item.consecutive_failures += 1;
            let pause =
                *pause_now || reaches_pause_threshold(item.consecutive_failures, pause_after);
            // An operator pause set during the run stays as the operator left it.
            if pause && item.paused.is_none() {
                item.paused = Some(Pause {
                    reason: failure_pause_reason(&error, *pause_now, pause_after),
                    by: PausedBy::Connector,
                    at: now,
                });
            }
            item.last_error = Some(error);
        }
    }
    item.version += 1;
    item.updated_at = Some(now);
    Ok(item.clone())
}

/// Whether the item shows that `owner`'s claim landed. Lease owners are unique per claim, so
/// only that claim can have written this owner.
pub(crate) fn claim_landed(item: &CursorItem, owner: &str) -> bool {
    item.lease_owner.as_deref() == Some(owner)
}

/// Whether the item holds exactly what this checkpoint writes: still ours, the one version
/// bump a fenced write makes, and our cursor.
pub(crate) fn checkpoint_landed(item: &CursorItem, lease: &Lease, update: &Checkpoint) -> bool {
    item.lease_owner.as_deref() == Some(lease.owner.as_str())
        && item.version == lease.version + 1
        && item.cursor.as_deref() == Some(update.cursor.as_str())
}

/// Whether the item holds exactly what this release writes: freed at the version after ours
/// (any later claim would have set an owner and bumped it again) with our outcome recorded.
pub(crate) fn release_landed(item: &CursorItem, lease: &Lease, outcome: &RunOutcome) -> bool {
    let recorded = match outcome {
        RunOutcome::Success => item.last_error.is_none() && item.consecutive_failures == 0,
        RunOutcome::Failure { error, .. } => {
            item.last_error.as_deref() == Some(stored_error(error).as_str())
        }
    };
    item.lease_owner.is_none() && item.version == lease.version + 1 && recorded
}

/// Operator pause or resume. Leaves `version` alone so a running invocation finishes its page
/// and then stops at its next claim.
pub(crate) fn set_pause(
    slot: &mut Option<CursorItem>,
    key: &str,
    pause: Option<Pause>,
    now: OffsetDateTime,
) -> CursorItem {
    let item = slot.get_or_insert_with(|| new_item(key));
    if pause.is_none() {
        item.consecutive_failures = 0;
    }
    item.paused = pause;
    item.updated_at = Some(now);
    item.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_error_redacts_tokens_after_auth_schemes() {
        let stored =
            stored_error("401 from Okta: Authorization: Bearer abc.def token eyJhbGciOi.x.y");
        assert!(!stored.contains("abc.def"), "{stored}");
        assert!(!stored.contains("eyJhbGciOi"), "{stored}");
        assert!(stored.starts_with("401 from Okta"));
    }

    #[test]
    fn stored_error_is_truncated_on_a_char_boundary() {
        let stored = stored_error(&"é".repeat(MAX_LAST_ERROR_CHARS + 10));
        assert_eq!(stored.chars().count(), MAX_LAST_ERROR_CHARS + 1);
        assert!(stored.ends_with('…'));
    }
}

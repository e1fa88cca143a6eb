//! Cursor store in one local JSON file, for the local CLI. Same rules as DynamoDB (the lease and
//! the fence are kept, so two CLI runs on one file cannot both move the cursor); every write
//! replaces the file atomically (temporary file, fsync, rename), so a crash leaves the old or
//! the new state, never half of one. A lease whose holding process is gone is free at once
//! (see [`holder`]).

mod holder;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::local::ItemSlots;
use super::{CursorError, CursorItem, CursorOp};
use holder::{Holder, HolderLocks};

pub struct FileCursorStore {
    shared: Arc<StateFile>,
}

/// A live process holding a lease, for messages such as "held by process 4711 until …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub owner: String,
    pub until: OffsetDateTime,
    /// The holder's process id, when it recorded one.
    pub pid: Option<u32>,
}

/// What the blocking file work needs, shared with the blocking thread.
struct StateFile {
    path: PathBuf,
    /// Serializes read-modify-write cycles within this process.
    lock: Mutex<()>,
    holders: HolderLocks,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    items: BTreeMap<String, CursorItem>,
}

impl FileCursorStore {
    /// A store kept in `path`; the file is created on the first write.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        FileCursorStore {
            shared: Arc::new(StateFile {
                holders: HolderLocks::new(path.clone()),
                path,
                lock: Mutex::new(()),
            }),
        }
    }

    /// Who holds the item's lease, when a live process does and the lease has not expired.
    pub async fn lease_holder(&self, key: &str) -> Result<Option<LeaseHolder>, CursorError> {
        let shared = Arc::clone(&self.shared);
        let owned_key = key.to_owned();
        blocking(key, move || {
            let item = shared.apply(&owned_key, CursorOp::Load, |slot| Ok(slot.clone()))?;
            let Some((owner, until)) = item.and_then(|i| i.lease_owner.zip(i.lease_expires_at))
            else {
                return Ok(None);
            };
            if until <= OffsetDateTime::now_utc() {
                return Ok(None);
            }
            match shared.holder(&owned_key, &owner)? {
                Holder::Alive { pid } => Ok(Some(LeaseHolder { owner, until, pid })),
                Holder::Gone => Ok(None),
            }
        })
        .await
    }
}

/// Runs blocking file work off the async worker threads.
async fn blocking<T: Send + 'static>(
    key: &str,
    work: impl FnOnce() -> Result<T, CursorError> + Send + 'static,
) -> Result<T, CursorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CursorError::Service {
            key: key.to_owned(),
            message: format!("cursor file task failed: {e}"),
        })?
}

impl StateFile {
    fn io_error(&self, key: &str, action: &str, err: impl std::fmt::Display) -> CursorError {
        CursorError::Service {
            key: key.to_owned(),
            message: format!("{action} {}: {err}", self.path.display()),
        }
    }

    fn read(&self, key: &str) -> Result<StoredFile, CursorError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CursorError::Malformed {
                key: key.to_owned(),
                detail: format!(
                    "cursor file {} is not valid cursor JSON ({e}); fix or delete it",
                    self.path.display()
                ),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoredFile::default()),
            Err(e) => Err(self.io_error(key, "reading cursor file", e)),
        }
    }

    /// An exclusive lock on `<state>.lock`, released when the returned file is dropped.
    fn lock_file(&self, key: &str) -> Result<std::fs::File, CursorError> {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(name))
            .map_err(|e| self.io_error(key, "opening the cursor lock file", e))?;
        lock.lock()
            .map_err(|e| self.io_error(key, "locking the cursor file", e))?;
        Ok(lock)
    }

    fn write(&self, key: &str, file: &StoredFile) -> Result<(), CursorError> {
        let json = serde_json::to_vec_pretty(file).expect("cursor items serialize");
        write_atomically(&self.path, &json)
            .map_err(|e| self.io_error(key, "writing cursor file", e))
    }

    fn holder(&self, key: &str, owner: &str) -> Result<Holder, CursorError> {
        self.holders
            .holder(owner)
            .map_err(|e| self.io_error(key, "checking the lease holder of", e))
    }

    /// Read, apply one rule, write back when it changed anything. Blocking.
    fn apply<T>(
        &self,
        key: &str,
        op: CursorOp,
        rule: impl FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError>,
    ) -> Result<T, CursorError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another CLI run on the same state file must not interleave its read-modify-write.
        let _across_processes = self.lock_file(key)?;
        let mut file = self.read(key)?;
        let mut slot = file.items.remove(key).map(|item| CursorItem {
            key: key.to_owned(),
            ..item
        });
        let before = slot.clone();
        if op == CursorOp::Claim {
            if let Some(item) = slot.as_mut() {
                self.free_if_holder_gone(key, item)?;
            }
        }
        let owner_before = slot.as_ref().and_then(|i| i.lease_owner.clone());
        let result = rule(&mut slot)?;
        let owner_after = slot.as_ref().and_then(|i| i.lease_owner.clone());
        let claimed = (op == CursorOp::Claim && owner_after != owner_before)
            .then_some(owner_after.as_ref())
            .flatten();
        if let Some(claimed) = claimed {
            // Locked before the claim is written, so the claim never shows without its lock.
            self.holders
                .hold(claimed)
                .map_err(|e| self.io_error(key, "locking the lease of", e))?;
        }
        if slot != before {
            if let Some(item) = slot {
                file.items.insert(key.to_owned(), item);
            }
            if let Err(e) = self.write(key, &file) {
                if let Some(claimed) = claimed {
                    self.holders.let_go(claimed);
                }
                return Err(e);
            }
        }
        if let (Some(released), None) = (&owner_before, &owner_after) {
            self.holders.let_go(released);
        }
        Ok(result)
    }

    /// Clears a lease whose holding process is gone, so the claim may take it at once.
    fn free_if_holder_gone(&self, key: &str, item: &mut CursorItem) -> Result<(), CursorError> {
        let Some(owner) = item.lease_owner.clone() else {
            return Ok(());
        };
        if self.holder(key, &owner)? == Holder::Gone {
            tracing::info!(
                key,
                owner,
                "the process holding the lease is gone; lease freed"
            );
            item.lease_owner = None;
            item.lease_expires_at = None;
        }
        Ok(())
    }
}

#[async_trait]
impl ItemSlots for FileCursorStore {
    async fn apply<T, F>(&self, key: &str, op: CursorOp, rule: F) -> Result<T, CursorError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError> + Send + 'static,
    {
        // File locks and fsync block: keep them off the async worker threads.
        let shared = Arc::clone(&self.shared);
        let owned_key = key.to_owned();
        blocking(key, move || shared.apply(&owned_key, op, rule)).await
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_all()?;
    std::fs::rename(&tmp.0, path)?;
    // The rename itself is durable only once the directory entry is.
    std::fs::File::open(dir)?.sync_all()
}

/// A new temporary file next to `path` (same filesystem, so the rename is atomic).
fn tempfile_in(dir: &Path, path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cursor".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    Ok((tmp, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::{conformance, Claim, CursorStore, RunOutcome};
    use time::{Duration, OffsetDateTime};

    #[tokio::test]
    async fn behaves_like_a_cursor_store() {
        let dir = tempfile::tempdir().unwrap();
        conformance::run_all(&FileCursorStore::new(dir.path().join("cursor.json"))).await;
    }

    #[tokio::test]
    async fn state_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let now = conformance::t0();
        let first = FileCursorStore::new(&path);
        let Claim::Acquired { mut lease, .. } = first
            .claim("acme", "cli", now, now + Duration::minutes(5))
            .await
            .unwrap()
        else {
            panic!("fresh file must be claimable");
        };
        first
            .checkpoint(&mut lease, &conformance::page("next-7", 7), now)
            .await
            .unwrap();
        drop(first);

        let reopened = FileCursorStore::new(&path);
        let item = reopened.load("acme").await.unwrap().unwrap();
        assert_eq!(item.cursor.as_deref(), Some("next-7"));
        assert_eq!(item.delivered_total, 7);
        reopened
            .release(&lease, &RunOutcome::Success, 5, now)
            .await
            .expect("the lease is still valid after reopening");
        assert_only_the_cursor_and_its_lock_in(dir.path(), "no temporary files left");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_on_one_file_never_both_claim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let now = OffsetDateTime::now_utc();
        let claims = (0..16).map(|n| {
            // Separate stores stand for separate CLI processes: only the file lock is shared.
            // Each stays alive (holding what it claimed) until all claims are counted.
            let store = FileCursorStore::new(&path);
            tokio::spawn(async move {
                let until = now + time::Duration::minutes(5);
                let claim = store
                    .claim("acme", &format!("run-{n}"), now, until)
                    .await
                    .unwrap();
                (claim, store)
            })
        });
        let mut acquired = 0;
        let mut alive = Vec::new();
        for claim in claims.collect::<Vec<_>>() {
            let (claim, store) = claim.await.unwrap();
            if matches!(claim, Claim::Acquired { .. }) {
                acquired += 1;
            }
            alive.push(store);
        }
        assert_eq!(acquired, 1);
    }

    /// `dir` holds the cursor file and its lock file, nothing else.
    fn assert_only_the_cursor_and_its_lock_in(dir: &std::path::Path, why: &str) {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["cursor.json", "cursor.json.lock"], "{why}");
    }

    async fn claim_for_five_minutes(store: &FileCursorStore, owner: &str) -> Claim {
        let now = OffsetDateTime::now_utc();
        store
            .claim("acme", owner, now, now + Duration::minutes(5))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_lease_whose_process_is_gone_is_free_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let killed = FileCursorStore::new(&path);
        assert!(matches!(
            claim_for_five_minutes(&killed, "killed-run").await,
            Claim::Acquired { .. }
        ));
        // The process ends without releasing: its lease lock goes with it.
        drop(killed);
        let next = FileCursorStore::new(&path);
        // A child process another test forks at this moment shares the lock until it execs
        // (a matter of microseconds), so the lock may outlive the store very briefly.
        let mut holder = next.lease_holder("acme").await.unwrap();
        for _ in 0..50 {
            if holder.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            holder = next.lease_holder("acme").await.unwrap();
        }
        assert_eq!(holder, None, "nobody holds the lease");
        let Claim::Acquired { lease, .. } = claim_for_five_minutes(&next, "next-run").await else {
            panic!("a lease without a live holder must be claimable at once");
        };
        next.release(&lease, &RunOutcome::Success, 5, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_only_the_cursor_and_its_lock_in(dir.path(), "no lease locks left");
    }

    #[tokio::test]
    async fn a_live_holder_keeps_its_lease_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let running = FileCursorStore::new(&path);
        let Claim::Acquired { lease, .. } = claim_for_five_minutes(&running, "running").await
        else {
            panic!("fresh file must be claimable");
        };
        let other = FileCursorStore::new(&path);
        let Claim::Held { owner, until } = claim_for_five_minutes(&other, "other").await else {
            panic!("a live holder's lease is held");
        };
        assert_eq!((owner.as_str(), until), ("running", lease.expires_at));
        let holder = other
            .lease_holder("acme")
            .await
            .unwrap()
            .expect("a live holder");
        assert_eq!(holder.owner, "running");
        assert_eq!(holder.until, lease.expires_at);
        assert_eq!(holder.pid, Some(std::process::id()));
        running
            .release(&lease, &RunOutcome::Success, 5, OffsetDateTime::now_utc())
            .await
            .unwrap();
        assert_eq!(other.lease_holder("acme").await.unwrap(), None);
    }

    /// The lock is the operating system's: a holder in another process counts while that
    /// process runs, and not after it was killed.
    #[tokio::test]
    async fn a_holder_in_a_killed_process_frees_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let store = FileCursorStore::new(&path);
        let now = OffsetDateTime::now_utc();
        let mut item = CursorItem {
            key: "acme".into(),
            lease_owner: Some("elsewhere".into()),
            lease_expires_at: Some(now + Duration::minutes(5)),
            version: 3,
            ..CursorItem::default()
        };
        store
            .shared
            .apply("acme", CursorOp::SetPause, move |slot| {
                item.key = "acme".into();
                *slot = Some(item);
                Ok(())
            })
            .unwrap();
        let lock = dir.path().join("cursor.json.lease.elsewhere");
        std::fs::write(&lock, "0").unwrap();
        // `-o`: only flock(1) itself holds the lock, not the command it waits on.
        let Ok(mut holder) = std::process::Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .args(["sleep", "60"])
            .spawn()
        else {
            eprintln!("skipped: no flock(1) on this machine");
            return;
        };
        // Until flock(1) holds the lock the lease looks free; wait for it without the store,
        // which would take a free lock file for a gone holder's leftover.
        for _ in 0..250 {
            let probe = std::fs::File::open(&lock).unwrap();
            match probe.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => break,
                _ => drop(probe),
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let named = store
            .lease_holder("acme")
            .await
            .unwrap()
            .expect("a live holder");
        assert_eq!(named.owner, "elsewhere");
        assert!(matches!(
            claim_for_five_minutes(&store, "me").await,
            Claim::Held { .. }
        ));
        holder.kill().unwrap();
        holder.wait().unwrap();
        let claim = claim_for_five_minutes(&store, "me").await;
        assert!(matches!(claim, Claim::Acquired { .. }), "{claim:?}");
    }

    #[tokio::test]
    async fn corrupt_file_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        std::fs::write(&path, b"{not json").unwrap();
        let err = FileCursorStore::new(&path).load("acme").await.unwrap_err();
        assert!(matches!(err, CursorError::Malformed { .. }));
        assert!(err.to_string().contains("cursor.json"), "{err}");
    }
}

//! Cursor store in one local JSON file, for the local CLI. Same rules as DynamoDB (the lease and
//! the fence are kept, so two CLI runs on one file cannot both move the cursor); every write
//! replaces the file atomically (temporary file, fsync, rename), so a crash leaves the old or
//! the new state, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{
    rules, Checkpoint, Claim, CursorError, CursorItem, CursorStore, Lease, Pause, PausedBy,
    RunOutcome, Window,
};

pub struct FileCursorStore {
    path: PathBuf,
    /// Serializes read-modify-write cycles within this process.
    lock: Mutex<()>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredFile {
    items: BTreeMap<String, StoredItem>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredPause {
    reason: String,
    by: StoredPausedBy,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoredPausedBy {
    Operator,
    Connector,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredWindow {
    #[serde(with = "time::serde::rfc3339")]
    start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    end: OffsetDateTime,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredItem {
    cursor: Option<String>,
    version: u64,
    lease_owner: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    lease_expires_at: Option<OffsetDateTime>,
    consecutive_failures: u32,
    paused: Option<StoredPause>,
    last_error: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    last_success_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    newest_published: Option<OffsetDateTime>,
    delivered_total: u64,
    window: Option<StoredWindow>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

impl StoredItem {
    fn into_item(self, key: &str) -> CursorItem {
        CursorItem {
            key: key.to_owned(),
            cursor: self.cursor,
            version: self.version,
            lease_owner: self.lease_owner,
            lease_expires_at: self.lease_expires_at,
            consecutive_failures: self.consecutive_failures,
            paused: self.paused.map(|p| Pause {
                reason: p.reason,
                by: match p.by {
                    StoredPausedBy::Operator => PausedBy::Operator,
                    StoredPausedBy::Connector => PausedBy::Connector,
                },
                at: p.at,
            }),
            last_error: self.last_error,
            last_success_at: self.last_success_at,
            newest_published: self.newest_published,
            delivered_total: self.delivered_total,
            window: self.window.map(|w| Window {
                start: w.start,
                end: w.end,
            }),
            updated_at: self.updated_at,
        }
    }

    fn from_item(item: CursorItem) -> Self {
        StoredItem {
            cursor: item.cursor,
            version: item.version,
            lease_owner: item.lease_owner,
            lease_expires_at: item.lease_expires_at,
            consecutive_failures: item.consecutive_failures,
            paused: item.paused.map(|p| StoredPause {
                reason: p.reason,
                by: match p.by {
                    PausedBy::Operator => StoredPausedBy::Operator,
                    PausedBy::Connector => StoredPausedBy::Connector,
                },
                at: p.at,
            }),
            last_error: item.last_error,
            last_success_at: item.last_success_at,
            newest_published: item.newest_published,
            delivered_total: item.delivered_total,
            window: item.window.map(|w| StoredWindow {
                start: w.start,
                end: w.end,
            }),
            updated_at: item.updated_at,
        }
    }
}

impl FileCursorStore {
    /// A store kept in `path`; the file is created on the first write.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileCursorStore {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

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

    /// Read, apply one rule, write back when it changed anything.
    fn apply<T>(
        &self,
        key: &str,
        rule: impl FnOnce(&mut Option<CursorItem>) -> Result<T, CursorError>,
    ) -> Result<T, CursorError> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        // Another CLI run on the same state file must not interleave its read-modify-write.
        let _across_processes = self.lock_file(key)?;
        let mut file = self.read(key)?;
        let mut slot = file.items.remove(key).map(|stored| stored.into_item(key));
        let before = slot.clone();
        let result = rule(&mut slot)?;
        if slot != before {
            if let Some(item) = slot {
                file.items
                    .insert(key.to_owned(), StoredItem::from_item(item));
            }
            self.write(key, &file)?;
        }
        Ok(result)
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

#[async_trait]
impl CursorStore for FileCursorStore {
    async fn load(&self, key: &str) -> Result<Option<CursorItem>, CursorError> {
        self.apply(key, |slot| Ok(slot.clone()))
    }

    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Claim, CursorError> {
        self.apply(key, |slot| {
            Ok(rules::claim(slot, key, owner, now, lease_until))
        })
    }

    async fn checkpoint(
        &self,
        lease: &mut Lease,
        update: &Checkpoint,
        now: OffsetDateTime,
    ) -> Result<(), CursorError> {
        let key = lease.key.clone();
        self.apply(&key, |slot| rules::checkpoint(slot, lease, update, now))
    }

    async fn release(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        pause_after: u32,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        self.apply(&lease.key, |slot| {
            rules::release(slot, lease, outcome, pause_after, now)
        })
    }

    async fn set_pause(
        &self,
        key: &str,
        pause: Option<Pause>,
        now: OffsetDateTime,
    ) -> Result<CursorItem, CursorError> {
        self.apply(key, |slot| Ok(rules::set_pause(slot, key, pause, now)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::conformance;
    use time::Duration;

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
        let mut leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            ["cursor.json", "cursor.json.lock"],
            "no temporary files left"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_on_one_file_never_both_claim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor.json");
        let now = OffsetDateTime::now_utc();
        let claims = (0..16).map(|n| {
            // Separate stores stand for separate CLI processes: only the file lock is shared.
            let store = FileCursorStore::new(&path);
            tokio::spawn(async move {
                let until = now + time::Duration::minutes(5);
                store
                    .claim("acme", &format!("run-{n}"), now, until)
                    .await
                    .unwrap()
            })
        });
        let mut acquired = 0;
        for claim in claims.collect::<Vec<_>>() {
            if matches!(claim.await.unwrap(), Claim::Acquired { .. }) {
                acquired += 1;
            }
        }
        assert_eq!(acquired, 1);
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

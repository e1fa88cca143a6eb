//! Which process holds a lease of the state file. The claiming process keeps an exclusive lock
//! on `<state>.lease.<owner>` for as long as it holds the lease, and the operating system drops
//! that lock when the process ends, however it ends. A lease whose lock nobody holds has no
//! holder left: it is free at once, whatever its expiry says.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Whether the process that claimed a lease still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// Still holds its lock; `pid` as it recorded itself.
    Alive {
        pid: Option<u32>,
    },
    Gone,
}

pub(super) struct HolderLocks {
    state: PathBuf,
    /// The locks of the leases this process holds, by owner.
    held: Mutex<HashMap<String, File>>,
}

impl HolderLocks {
    pub(super) fn new(state: PathBuf) -> Self {
        HolderLocks {
            state,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn path(&self, owner: &str) -> PathBuf {
        let safe: String = owner
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut name = self.state.as_os_str().to_owned();
        name.push(format!(".lease.{safe}"));
        PathBuf::from(name)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, File>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the lock for a lease just claimed as `owner`, and records this process's id in it.
    pub(super) fn hold(&self, owner: &str) -> std::io::Result<()> {
        if self.held().contains_key(owner) {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.path(owner))?;
        file.try_lock().map_err(|e| match e {
            TryLockError::WouldBlock => std::io::Error::new(
                ErrorKind::WouldBlock,
                "another process holds the lease lock of this owner",
            ),
            TryLockError::Error(e) => e,
        })?;
        file.set_len(0)?;
        file.write_all(std::process::id().to_string().as_bytes())?;
        self.held().insert(owner.to_owned(), file);
        Ok(())
    }

    /// Gives up the lock of a released lease and removes its file.
    pub(super) fn let_go(&self, owner: &str) {
        let kept = self.held().remove(owner);
        // Removed while still locked (if ours), so no other process finds it half-way.
        let _ = std::fs::remove_file(self.path(owner));
        drop(kept);
    }

    /// Whether the process holding the lease of `owner` still runs. A leftover lock file of a
    /// gone holder is removed.
    pub(super) fn holder(&self, owner: &str) -> std::io::Result<Holder> {
        if self.held().contains_key(owner) {
            return Ok(Holder::Alive {
                pid: Some(std::process::id()),
            });
        }
        let path = self.path(owner);
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Holder::Gone),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                Ok(Holder::Gone)
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                Ok(Holder::Alive { pid })
            }
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

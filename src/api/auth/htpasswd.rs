//! The `http_basic` user file: Apache htpasswd lines `user:bcrypt-hash`.
//!
//! Re-read when its modification time changes, so users can be added without
//! a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

struct Loaded {
    mtime: SystemTime,
    users: HashMap<String, String>,
    /// The highest bcrypt cost in the file: what an unknown user is verified at.
    cost: u32,
}

pub struct UserFile {
    path: PathBuf,
    loaded: Mutex<Option<Loaded>>,
}

/// bcrypt's cost from a `$2b$12$…` hash.
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

impl UserFile {
    pub fn new(path: PathBuf) -> Self {
        UserFile {
            path,
            loaded: Mutex::new(None),
        }
    }

    fn load(&self) -> Result<Loaded, String> {
        let unreadable = |e: std::io::Error| format!("cannot read {}: {e}", self.path.display());
        let meta = std::fs::metadata(&self.path).map_err(unreadable)?;
        let text = std::fs::read_to_string(&self.path).map_err(unreadable)?;
        let users: HashMap<String, String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(u, h)| (u.to_string(), h.to_string()))
            .collect();
        let cost = users
            .values()
            .filter_map(|h| cost_of(h))
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        Ok(Loaded {
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            users,
            cost,
        })
    }

    /// The hash stored for `user` (if any) and the cost to verify an unknown
    /// user at, re-reading the file if it changed.
    pub fn lookup(&self, user: &str) -> Result<(Option<String>, u32), String> {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let mut loaded = self.loaded.lock().expect("user file");
        if loaded.as_ref().map(|l| Some(l.mtime)) != Some(mtime) {
            *loaded = Some(self.load()?);
        }
        let l = loaded.as_ref().expect("loaded");
        Ok((l.users.get(user).cloned(), l.cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_the_cost_for_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("htpasswd");
        std::fs::write(
            &path,
            "# users\nadmin:$2y$05$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01\nops:$2b$07$x\n",
        )
        .unwrap();
        let file = UserFile::new(path);
        let (hash, cost) = file.lookup("admin").unwrap();
        assert!(hash.unwrap().starts_with("$2y$05$"));
        assert_eq!(cost, 7);
        assert_eq!(file.lookup("nobody").unwrap(), (None, 7));
        assert!(UserFile::new(dir.path().join("missing"))
            .lookup("x")
            .is_err());
    }
}

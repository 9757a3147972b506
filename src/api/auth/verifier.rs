//! Password verification, off the async workers.
//!
//! bcrypt is meant to be slow (a quarter of a second at cost 12): run on the
//! async worker threads, a handful of guessers stalled every request of the
//! process, `/boot/` included. Here a verification runs on tokio's blocking
//! threads, a few at once (half the cores, at least one), with at most
//! [`MAX_IN_POOL`] running or waiting; beyond that a caller is told the server
//! is busy (503) rather than queued without end.
//!
//! - An unknown user is verified against a dummy hash of the file's cost, so
//!   known and unknown users cost the same: the time of a 401 tells nothing.
//! - A successful verification is remembered for [`REMEMBER_FOR`] (keyed by a
//!   keyed 128-bit hash of user, password and stored hash, never the password
//!   itself), so the right user's repeated requests skip bcrypt and do not
//!   queue behind guessers. A changed hash in the file changes the key.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Verifications running or waiting for a slot before callers are told to retry.
pub const MAX_IN_POOL: usize = 64;
/// How long a successful verification is remembered.
pub const REMEMBER_FOR: Duration = Duration::from_secs(300);
/// Remembered successes at most (then all are forgotten at once).
const MAX_REMEMBERED: usize = 1024;

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// Too many verifications are waiting: try again shortly.
    Busy,
}

/// Runs bcrypt verifications in a bounded pool.
pub struct Verifier {
    slots: Arc<Semaphore>,
    in_pool: AtomicUsize,
    /// bcrypt runs so far (for tests and the curious).
    runs: Arc<AtomicU64>,
    /// Dummy hashes for unknown users, by cost.
    dummies: Arc<Mutex<HashMap<u32, String>>>,
    remembered: Mutex<HashMap<u128, Instant>>,
    keys: (RandomState, RandomState),
}

impl Default for Verifier {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_slots((cores / 2).max(1))
    }
}

impl Verifier {
    pub fn with_slots(slots: usize) -> Self {
        Verifier {
            slots: Arc::new(Semaphore::new(slots)),
            in_pool: AtomicUsize::new(0),
            runs: Arc::new(AtomicU64::new(0)),
            dummies: Arc::default(),
            remembered: Mutex::default(),
            keys: (RandomState::new(), RandomState::new()),
        }
    }

    /// How many bcrypt verifications have run.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    fn key(&self, user: &str, password: &str, hash: &str) -> u128 {
        let item = (user, password, hash);
        (u128::from(self.keys.0.hash_one(item)) << 64) | u128::from(self.keys.1.hash_one(item))
    }

    fn remembered(&self, key: u128) -> bool {
        let mut seen = self.remembered.lock().expect("remembered");
        match seen.get(&key) {
            Some(at) if at.elapsed() < REMEMBER_FOR => true,
            Some(_) => {
                seen.remove(&key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: u128) {
        let mut seen = self.remembered.lock().expect("remembered");
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(key, Instant::now());
    }

    /// Checks `password` against `hash`, or against a dummy hash of `cost`
    /// when the user is unknown (`hash` is `None`): either way one bcrypt run.
    pub async fn check(
        &self,
        user: &str,
        password: &str,
        hash: Option<&str>,
        cost: u32,
    ) -> Verdict {
        let key = hash.map(|h| self.key(user, password, h));
        if key.is_some_and(|k| self.remembered(k)) {
            return Verdict::Valid;
        }
        if self.in_pool.fetch_add(1, Ordering::SeqCst) >= MAX_IN_POOL {
            self.in_pool.fetch_sub(1, Ordering::SeqCst);
            return Verdict::Busy;
        }
        let slot = self.slots.clone().acquire_owned().await;
        let password = password.to_string();
        let hash = hash.map(String::from);
        let runs = self.runs.clone();
        let dummies = self.dummies.clone();
        let valid = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            runs.fetch_add(1, Ordering::Relaxed);
            match hash {
                Some(h) => bcrypt::verify(&password, &h).unwrap_or(false),
                None => {
                    let dummy = dummy(&dummies, cost);
                    // Always false: the dummy's password is random and unknown.
                    let _ = bcrypt::verify(&password, &dummy);
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        self.in_pool.fetch_sub(1, Ordering::SeqCst);
        if valid {
            if let Some(k) = key {
                self.remember(k);
            }
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }
}

/// The dummy hash of `cost`, made once (on a blocking thread: it costs one
/// bcrypt run).
fn dummy(dummies: &Mutex<HashMap<u32, String>>, cost: u32) -> String {
    if let Some(h) = dummies.lock().expect("dummies").get(&cost) {
        return h.clone();
    }
    let secret: [u8; 18] = rand::random();
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let cost = cost.clamp(4, 31);
    let hash = bcrypt::hash(secret, cost).unwrap_or_default();
    dummies
        .lock()
        .expect("dummies")
        .entry(cost)
        .or_insert(hash)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known user with a wrong password and an unknown user both cost one
    /// bcrypt run; the right password is remembered.
    #[tokio::test]
    async fn unknown_users_cost_one_verification_like_known_ones() {
        let v = Verifier::with_slots(1);
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        assert_eq!(
            v.check("admin", "wrong", Some(&hash), 4).await,
            Verdict::Invalid
        );
        assert_eq!(v.runs(), 1);
        assert_eq!(v.check("nobody", "wrong", None, 4).await, Verdict::Invalid);
        assert_eq!(v.runs(), 2, "the unknown user was verified too");
        assert_eq!(v.check("nobody", "s3cret", None, 4).await, Verdict::Invalid);
        assert_eq!(
            v.check("admin", "s3cret", Some(&hash), 4).await,
            Verdict::Valid
        );
        assert_eq!(v.runs(), 4);
        assert_eq!(
            v.check("admin", "s3cret", Some(&hash), 4).await,
            Verdict::Valid
        );
        assert_eq!(v.runs(), 4, "a success is remembered");
        let changed = bcrypt::hash("s3cret", 4).unwrap();
        assert_eq!(
            v.check("admin", "s3cret", Some(&changed), 4).await,
            Verdict::Valid
        );
        assert_eq!(v.runs(), 5, "a changed hash is verified again");
        assert_eq!(
            v.check("admin", "wrong", Some(&hash), 4).await,
            Verdict::Invalid
        );
    }

    /// Beyond the pool's room, callers are told to retry at once.
    #[tokio::test]
    async fn a_full_pool_answers_busy() {
        let v = Arc::new(Verifier::with_slots(1));
        let hash = Arc::new(bcrypt::hash("s3cret", 4).unwrap());
        let held = v.slots.clone().acquire_owned().await.unwrap();
        let queued: Vec<_> = (0..MAX_IN_POOL)
            .map(|i| {
                let (v, hash) = (v.clone(), hash.clone());
                tokio::spawn(
                    async move { v.check(&format!("u{i}"), "wrong", Some(&hash), 4).await },
                )
            })
            .collect();
        while v.in_pool.load(Ordering::SeqCst) < MAX_IN_POOL {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            v.check("admin", "s3cret", Some(&hash), 4).await,
            Verdict::Busy
        );
        drop(held);
        for task in queued {
            assert_eq!(task.await.unwrap(), Verdict::Invalid);
        }
        assert_eq!(
            v.check("admin", "s3cret", Some(&hash), 4).await,
            Verdict::Valid
        );
    }
}

//! In-process serialisation of the writers of one aggregate.
//!
//! Commands on one aggregate race optimistically: each loads the events,
//! decides, and appends at the next sequence number, and the loser of a race
//! re-runs. That is right across processes, but inside one process 32 writers
//! on one node would mostly lose to each other and run out of retries (a 409
//! for a write nothing was wrong with). So the engine takes this lock per
//! aggregate around a command: writers of one aggregate in this process take
//! turns (first come, first served), contention costs them latency, not
//! refusals, and the optimistic retry is left for writers in other processes.
//!
//! An entry lives only while someone holds or waits for its lock, so memory
//! stays bounded by the number of commands in flight, not of aggregates seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Slot = Arc<tokio::sync::Mutex<()>>;

/// One async mutex per key, created on demand and dropped when idle.
#[derive(Default)]
pub struct KeyedLocks {
    /// Each key's mutex, and how many guards (holding or waiting) use it.
    slots: Mutex<HashMap<String, (Slot, usize)>>,
}

/// Holds the lock of one key; dropping it releases the lock (and the key's
/// entry when nobody else wants it). Also frees the entry when a waiter is
/// cancelled before it got the lock.
pub struct KeyGuard<'a> {
    locks: &'a KeyedLocks,
    key: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the lock of `key`.
    pub async fn lock(&self, key: &str) -> KeyGuard<'_> {
        let slot = {
            let mut slots = self.slots.lock().expect("lock map");
            let (slot, users) = slots.entry(key.to_string()).or_default();
            *users += 1;
            slot.clone()
        };
        // The guard exists before the wait, so a cancelled wait is counted
        // out too.
        let mut guard = KeyGuard {
            locks: self,
            key: key.to_string(),
            held: None,
        };
        guard.held = Some(slot.lock_owned().await);
        guard
    }

    /// How many keys have an entry (for tests: idle keys have none).
    pub fn len(&self) -> usize {
        self.slots.lock().expect("lock map").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        drop(self.held.take());
        let mut slots = self.locks.slots.lock().expect("lock map");
        if let Some((_, users)) = slots.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_holder_per_key_and_no_entry_when_idle() {
        let locks = Arc::new(KeyedLocks::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![];
        for _ in 0..16 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock("a").await;
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                tokio::task::yield_now().await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(locks.is_empty());
    }

    #[tokio::test]
    async fn other_keys_do_not_wait_and_a_cancelled_waiter_frees_its_entry() {
        let locks = KeyedLocks::new();
        let held = locks.lock("a").await;
        let _b = locks.lock("b").await; // does not wait for "a"
        let waiting = tokio::time::timeout(Duration::from_millis(10), locks.lock("a")).await;
        assert!(waiting.is_err(), "a second holder of \"a\"");
        drop(held);
        drop(_b);
        assert!(locks.is_empty());
    }
}

//! Back-off of repeated failed logins (`[api] auth_failure_limit`,
//! `auth_address_failure_limit`, `auth_backoff`).
//!
//! Two counts of failed verifications: per user *and* client address, and per
//! client address whatever the user. Once a count reaches its limit, that user
//! from that address (or the whole address) is refused with 429 until
//! `auth_backoff` has passed since the last failure, **before** its password is
//! looked at: the right password is refused too, or the difference between 429
//! and 200 would tell a guesser when it has found it. Each further failure
//! once the limit is reached starts the wait again, so a guesser gets one try
//! per back-off. The same user from another address is not held up (a
//! guesser cannot lock the operator out), and a success clears the count of
//! that user at that address.
//!
//! A count is forgotten [`FORGET_AFTER`] after its last failure (or after
//! `auth_backoff`, if that is longer). IPv6 clients are counted by their /64,
//! the block one host usually holds.

use crate::config::AuthThrottle;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a count of failures is kept after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Counts kept at most per map; beyond, new callers are not counted (the
/// address count still is) until old counts are forgotten.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: Instant,
}

#[derive(Default)]
struct Counts {
    /// Keyed by a keyed hash of the user name: a guesser's long made-up
    /// names cost no memory.
    by_user: HashMap<(u64, IpAddr), Count>,
    by_address: HashMap<IpAddr, Count>,
}

/// The failure counts of one server.
pub struct Backoff {
    limits: AuthThrottle,
    forget: Duration,
    names: RandomState,
    counts: Mutex<Counts>,
}

/// The address failures are counted under.
fn client_key(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl Backoff {
    pub fn new(limits: AuthThrottle) -> Self {
        Backoff {
            forget: FORGET_AFTER.max(limits.backoff),
            limits,
            names: RandomState::new(),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn keys(&self, user: &str, addr: IpAddr) -> ((u64, IpAddr), IpAddr) {
        let addr = client_key(addr);
        ((self.names.hash_one(user), addr), addr)
    }

    /// How long `user` from `addr` must still wait, if it must.
    pub fn wait(&self, user: &str, addr: IpAddr, now: Instant) -> Option<Duration> {
        let (user_key, addr_key) = self.keys(user, addr);
        let counts = self.counts.lock().expect("backoff");
        let until = |count: Option<&Count>, limit: u32| {
            count
                .filter(|c| c.failures >= limit)
                .map(|c| c.last + self.limits.backoff)
                .filter(|until| *until > now)
        };
        let user_until = until(counts.by_user.get(&user_key), self.limits.per_user);
        let addr_until = until(counts.by_address.get(&addr_key), self.limits.per_address);
        user_until.max(addr_until).map(|until| until - now)
    }

    /// A verification of `user` from `addr` failed.
    pub fn failed(&self, user: &str, addr: IpAddr, now: Instant) {
        let (user_key, addr_key) = self.keys(user, addr);
        let mut counts = self.counts.lock().expect("backoff");
        let forget = self.forget;
        let fresh = |c: &Count| now.saturating_duration_since(c.last) < forget;
        if counts.by_user.len() >= MAX_TRACKED || counts.by_address.len() >= MAX_TRACKED {
            counts.by_user.retain(|_, c| fresh(c));
            counts.by_address.retain(|_, c| fresh(c));
        }
        let bump = |count: Option<&mut Count>| match count {
            Some(c) if fresh(c) => {
                c.failures = c.failures.saturating_add(1);
                c.last = now;
                None
            }
            Some(c) => {
                *c = Count {
                    failures: 1,
                    last: now,
                };
                None
            }
            None => Some(Count {
                failures: 1,
                last: now,
            }),
        };
        if let Some(new) = bump(counts.by_user.get_mut(&user_key)) {
            if counts.by_user.len() < MAX_TRACKED {
                counts.by_user.insert(user_key, new);
            }
        }
        if let Some(new) = bump(counts.by_address.get_mut(&addr_key)) {
            if counts.by_address.len() < MAX_TRACKED {
                counts.by_address.insert(addr_key, new);
            }
        }
    }

    /// `user` from `addr` logged in: its own count starts again.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        let (user_key, _) = self.keys(user, addr);
        self.counts
            .lock()
            .expect("backoff")
            .by_user
            .remove(&user_key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(AuthThrottle {
            per_user: 3,
            per_address: 5,
            backoff: Duration::from_secs(60),
        })
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn a_user_at_an_address_waits_after_its_limit_and_others_do_not() {
        let b = backoff();
        let t = Instant::now();
        for _ in 0..2 {
            b.failed("admin", A, t);
        }
        assert_eq!(b.wait("admin", A, t), None, "below the limit");
        b.failed("admin", A, t);
        assert_eq!(b.wait("admin", A, t), Some(Duration::from_secs(60)));
        assert_eq!(
            b.wait("admin", A, t + Duration::from_secs(45)),
            Some(Duration::from_secs(15))
        );
        assert_eq!(b.wait("admin", B, t), None, "the same user elsewhere");
        assert_eq!(b.wait("other", A, t), None, "another user here");
        // After the back-off, one more failure blocks again at once.
        let later = t + Duration::from_secs(61);
        assert_eq!(b.wait("admin", A, later), None);
        b.failed("admin", A, later);
        assert_eq!(b.wait("admin", A, later), Some(Duration::from_secs(60)));
        // A success starts the count again.
        b.succeeded("admin", A);
        assert_eq!(b.wait("admin", A, later), None);
    }

    #[test]
    fn an_address_waits_after_its_limit_whatever_the_user() {
        let b = backoff();
        let t = Instant::now();
        for user in ["a", "b", "c", "d", "e"] {
            assert_eq!(b.wait("admin", A, t), None);
            b.failed(user, A, t);
        }
        assert!(b.wait("admin", A, t).is_some(), "every user from A waits");
        assert_eq!(b.wait("admin", B, t), None);
        // A success of one user does not clear the address.
        b.succeeded("a", A);
        assert!(b.wait("admin", A, t).is_some());
    }

    #[test]
    fn counts_are_forgotten_and_ipv6_is_counted_by_its_64() {
        let b = backoff();
        let t = Instant::now();
        for _ in 0..2 {
            b.failed("admin", A, t);
        }
        let much_later = t + FORGET_AFTER;
        b.failed("admin", A, much_later);
        assert_eq!(
            b.wait("admin", A, much_later),
            None,
            "old failures forgotten"
        );

        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for _ in 0..3 {
            b.failed("admin", one, t);
        }
        assert!(b.wait("admin", same_64, t).is_some());
        assert_eq!(b.wait("admin", other_64, t), None);
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            b.failed("admin", mapped, t);
        }
        assert!(b.wait("admin", B, t).is_some(), "IPv4-mapped is IPv4");
    }
}

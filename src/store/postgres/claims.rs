//! Claims on PostgreSQL: applied inside the append (or import) transaction,
//! behind advisory locks on their keys that put the feed in the order the
//! claims changed hands.

use super::errors::append_error;
use crate::store::rows::Dialect;
use crate::store::shared;
use crate::store::{sql_error, ClaimConflict, ClaimOp, StoreError};

/// First half of the advisory-lock keys of claims ("ILCL"); the second half
/// hashes the claim's scope and key. See [`lock_claim_keys`].
const CLAIM_LOCK: i32 = 0x494C_434C;

/// Applies claim changes inside an append (or import) transaction, in order.
/// Takes a transaction-scoped advisory lock on every claim key the append
/// touches, before its first write.
///
/// Why: the feed orders events by transaction id, which PostgreSQL assigns at
/// a transaction's first write. Without these locks, a transaction acquiring a
/// claim (a port with MAC X added to node B) could write its events first,
/// then wait on the claim row of one releasing it (node A deleted) and commit
/// after it — yet be numbered before it, so a replay would apply "B takes X"
/// before "A lets X go". Waiting here, where no id is assigned yet, makes the
/// later owner's events come later in the feed too. Keys are locked in one
/// order, so two appends cannot deadlock on each other.
pub(super) async fn lock_claim_keys(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for op in claims {
        match op {
            ClaimOp::Acquire { scope, key, .. } | ClaimOp::Release { scope, key, .. } => {
                keys.push((scope.clone(), key.clone()))
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                // A read: assigns no transaction id.
                let held: Vec<(String, String)> = sqlx::query_as(
                    "SELECT scope, key FROM claims WHERE owner = $1 AND ($2::text IS NULL OR scope = $2)",
                )
                .bind(owner)
                .bind(scope)
                .fetch_all(&mut **tx)
                .await
                .map_err(sql_error)?;
                keys.extend(held);
            }
        }
    }
    let mut locks: Vec<(i32, i32)> = keys
        .iter()
        .map(|(scope, key)| claim_lock_key(scope, key))
        .collect();
    locks.sort_unstable();
    locks.dedup();
    for (class, h) in locks {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
            .bind(class)
            .bind(h)
            .execute(&mut **tx)
            .await
            .map_err(sql_error)?;
    }
    Ok(())
}

/// The advisory-lock key (`pg_advisory_xact_lock(int4, int4)`) of one claim:
/// [`CLAIM_LOCK`] and an FNV-1a hash of scope and key folded to 32 bits.
pub fn claim_lock_key(scope: &str, key: &str) -> (i32, i32) {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in scope.bytes().chain([0u8]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (CLAIM_LOCK, (h ^ (h >> 32)) as u32 as i32)
}

pub(super) async fn apply_claims(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    claims: &[ClaimOp],
) -> Result<(), StoreError> {
    for op in claims {
        match op {
            ClaimOp::Acquire { scope, key, owner } => acquire(tx, scope, key, owner).await?,
            ClaimOp::Release { scope, key, owner } => {
                shared::release_claim(&mut **tx, Dialect::Postgres, scope, key, owner)
                    .await
                    .map_err(append_error)?;
            }
            ClaimOp::ReleaseAll { owner, scope } => {
                sqlx::query(
                    "DELETE FROM claims WHERE owner = $1 AND ($2::text IS NULL OR scope = $2)",
                )
                .bind(owner)
                .bind(scope)
                .execute(&mut **tx)
                .await
                .map_err(append_error)?;
            }
        }
    }
    Ok(())
}

/// Acquires a claim inside the append transaction, or fails the append.
///
/// `INSERT … ON CONFLICT DO UPDATE … WHERE claims.owner = EXCLUDED.owner RETURNING`
/// returns a row exactly when the claim is now ours: newly inserted, or already held
/// by the same owner (idempotent). If another transaction is inserting the same key,
/// PostgreSQL makes us wait for it to finish and then decides on its outcome, so two
/// concurrent claimants can never both succeed. No row back means someone else holds
/// it; we look the holder up for the error message. In the rare case that the holder
/// released it in between, we simply try again.
async fn acquire(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    scope: &str,
    key: &str,
    owner: &str,
) -> Result<(), StoreError> {
    for _ in 0..3 {
        let got: Option<String> = sqlx::query_scalar(
            "INSERT INTO claims (scope, key, owner) VALUES ($1, $2, $3) \
             ON CONFLICT (scope, key) DO UPDATE SET owner = EXCLUDED.owner \
               WHERE claims.owner = EXCLUDED.owner \
             RETURNING owner",
        )
        .bind(scope)
        .bind(key)
        .bind(owner)
        .fetch_optional(&mut **tx)
        .await
        .map_err(append_error)?;
        if got.is_some() {
            return Ok(());
        }
        let holder = shared::claim_holder(&mut **tx, Dialect::Postgres, scope, key)
            .await
            .map_err(append_error)?;
        if let Some(holder) = holder {
            return Err(StoreError::Claim(ClaimConflict {
                scope: scope.to_string(),
                key: key.to_string(),
                owner: holder,
            }));
        }
    }
    // The claim keeps changing hands under us; let the caller retry the command.
    Err(StoreError::Conflict)
}

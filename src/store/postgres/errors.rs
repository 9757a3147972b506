//! What a PostgreSQL error means to the store: a concurrent transaction
//! (try again), a taken key (the optimistic lock), or a failure.

use crate::store::shared::is_unique_violation;
use crate::store::{sql_error, StoreError};

/// A deadlock or serialization failure: PostgreSQL aborted the transaction only
/// because of a concurrent one. Retrying (after reloading) is the right response,
/// exactly as for an optimistic-lock conflict, so appends report it as
/// [`StoreError::Conflict`].
pub(super) fn is_transient(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "40P01" || c == "40001")
}

/// Error mapping inside `append`: the events primary key is the optimistic lock.
pub(super) fn append_error(err: sqlx::Error) -> StoreError {
    if is_unique_violation(&err) || is_transient(&err) {
        StoreError::Conflict
    } else {
        sql_error(err)
    }
}

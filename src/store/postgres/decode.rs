//! Stored rows read back on PostgreSQL: `json`/`jsonb` columns through the
//! one decoder of stored data, and the feed's events (the row decoding
//! itself is [`shared`]'s, the same for SQLite).

use crate::store::shared::{self, JsonRow};
use crate::store::{sql_error, RecordedEvent, StoreError};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Row};

/// A `json`/`jsonb` column decoded by the one decoder of stored data
/// ([`crate::store::json`]), not by sqlx's (serde_json's 128-level limit): what was
/// stored must read back, however it is nested.
pub(super) struct Stored(pub(super) Value);

impl sqlx::Type<sqlx::Postgres> for Stored {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Json<Value> as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
        <Json<Value> as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Stored {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef;
        let binary_jsonb = value.format() == sqlx::postgres::PgValueFormat::Binary
            && *value.type_info() == <Json<Value> as sqlx::Type<sqlx::Postgres>>::type_info();
        let mut bytes = value.as_bytes()?;
        if binary_jsonb {
            // jsonb's binary form is a version byte (1) and the JSON text.
            match bytes.split_first() {
                Some((1, text)) => bytes = text,
                _ => return Err("unsupported jsonb format version".into()),
            }
        }
        Ok(Stored(crate::store::json::decode_slice(bytes)?))
    }
}

/// `json`/`jsonb` columns through [`Stored`].
impl JsonRow for PgRow {
    fn json<I: ColumnIndex<Self>>(&self, column: I, _what: &str) -> Result<Value, StoreError> {
        self.try_get::<Stored, _>(column)
            .map(|s| s.0)
            .map_err(sql_error)
    }
}

/// A feed event (see [`shared::recorded_from_row`]): `event_id` is a column
/// of its own, and `recorded_at` is read as microseconds since the epoch.
pub(super) fn recorded_from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let micros: i64 = row.try_get("recorded_us").map_err(sql_error)?;
    shared::recorded_from_row(row, Some("event_id"), || {
        DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| StoreError::Corrupt(format!("recorded_at out of range: {micros}")))
    })
}

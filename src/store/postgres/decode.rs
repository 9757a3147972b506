//! Stored rows read back: events and documents, their JSON through the one
//! decoder of stored data.

use crate::store::{sql_error, to_u64, RecordedEvent, StoreError};
use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

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

pub(super) fn serialized_from_row(row: &PgRow) -> Result<SerializedEvent, StoreError> {
    Ok(SerializedEvent {
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")? as usize,
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload: row.try_get::<Stored, _>("payload").map_err(sql_error)?.0,
        metadata: row.try_get::<Stored, _>("metadata").map_err(sql_error)?.0,
    })
}

/// A feed event; JSON that does not decode gets the stand-in of
/// [`RecordedEvent::unreadable`] instead of failing the whole page.
pub(super) fn recorded_from_row(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let micros: i64 = row.try_get("recorded_us").map_err(sql_error)?;
    let json = |column: &str| {
        row.try_get::<Stored, _>(column)
            .map(|s| s.0)
            .map_err(sql_error)
    };
    let (payload, metadata) = crate::store::feed_json(json("payload"), json("metadata"));
    Ok(RecordedEvent {
        position: to_u64(row.try_get("position").map_err(sql_error)?, "position")?,
        aggregate_type: row.try_get("aggregate_type").map_err(sql_error)?,
        aggregate_id: row.try_get("aggregate_id").map_err(sql_error)?,
        sequence: to_u64(row.try_get("sequence").map_err(sql_error)?, "sequence")?,
        event_id: to_u64(row.try_get("event_id").map_err(sql_error)?, "event_id")?,
        event_type: row.try_get("event_type").map_err(sql_error)?,
        event_version: row.try_get("event_version").map_err(sql_error)?,
        payload,
        metadata,
        recorded_at: DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| StoreError::Corrupt(format!("recorded_at out of range: {micros}")))?,
    })
}

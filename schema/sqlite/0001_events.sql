-- The event log: sqlite-es's `events` columns and primary key (the optimistic
-- lock), plus the feed position and the time of recording.
--
-- SQLite serializes writers (the store uses one write connection and BEGIN
-- IMMEDIATE), so the position is assigned inside the appending transaction as
-- max(position) + 1: commit order is position order and no gap can appear.
-- recorded_at is RFC 3339 UTC with microseconds, e.g. 2026-11-25T10:00:00.123456Z.
CREATE TABLE events
(
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    position       INTEGER NOT NULL UNIQUE CHECK (position > 0),
    recorded_at    TEXT    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

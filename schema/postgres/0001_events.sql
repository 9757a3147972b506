-- The event log.
--
-- The first seven columns and the primary key are exactly postgres-es's `events`
-- table (postgres-es 0.5.0, db/init.sql), with jsonb instead of json: postgres-es
-- lists its columns explicitly in every statement, so it reads and writes this
-- table unchanged, and the primary key is cqrs-es's optimistic lock.
--
-- The extra columns carry the global, gap-free feed (see src/store/postgres.rs):
--   event_id     insert order within the whole table. Handed out at INSERT time,
--                so it is NOT commit order and is never shown to consumers.
--   tx_id        the inserting transaction's id. A transaction id below the
--                current snapshot's xmin belongs to a finished transaction.
--   recorded_at  wall-clock time of the insert (clock_timestamp, not the
--                transaction start time that now() would give).
--   position     the place in the feed: NULL until `sequence()` numbers the row
--                after its transaction has finished; then dense 1, 2, 3, ...
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        jsonb                        NOT NULL,
    metadata       jsonb                        NOT NULL,
    event_id       bigserial                    NOT NULL UNIQUE,
    tx_id          xid8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at    timestamptz                  NOT NULL DEFAULT clock_timestamp(),
    position       bigint UNIQUE CHECK (position > 0),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

-- The sequencer's work list: only rows still waiting for a position, in the
-- order they will be numbered. It stays small (rows leave it once numbered).
CREATE INDEX events_unsequenced ON events (tx_id, event_id) WHERE position IS NULL;

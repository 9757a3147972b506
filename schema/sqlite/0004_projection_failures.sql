-- Events a read model could not apply (see `ApplyFailure` in src/store/mod.rs).
-- Written in the same transaction as the checkpoint that moves past them;
-- moved with the model by a rebuild's swap, deleted with it by a drop.
-- failed_at is RFC 3339 UTC with microseconds, like events.recorded_at.
CREATE TABLE projection_failures
(
    model          TEXT    NOT NULL,
    position       INTEGER NOT NULL CHECK (position > 0),
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    error          TEXT    NOT NULL,
    failed_at      TEXT    NOT NULL,
    PRIMARY KEY (model, position)
) STRICT;

-- Events a read model could not apply (see `ApplyFailure` in src/store/mod.rs).
-- Written in the same transaction as the checkpoint that moves past them;
-- moved with the model by a rebuild's swap, deleted with it by a drop.
CREATE TABLE projection_failures
(
    model          text                     NOT NULL,
    position       bigint CHECK (position > 0) NOT NULL,
    aggregate_type text                     NOT NULL,
    aggregate_id   text                     NOT NULL,
    event_type     text                     NOT NULL,
    error          text                     NOT NULL,
    failed_at      timestamptz              NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (model, position)
);

-- Typed read-model tables (see src/store/rows.rs): the documents of the
-- models the API lists, each beside the values of its index columns (its
-- keys, computed by the projection that owns the model), with an index for
-- every query the API makes. Must match rows::TABLES and rows::INT_COLUMNS:
-- tests/store_suite.rs writes and queries every column on every backend.
--
-- A model's scratch copies (`nodes~rebuild`) live in its table too, so a
-- rebuild's swap is an UPDATE of `model` within one table.
--
-- Every index starts with `model` and ends with `ord` (the creation order,
-- unique per model), so a keyset page — rows after (sort value, ord) in
-- `ORDER BY col ASC NULLS FIRST, ord ASC NULLS FIRST` or its reverse — is
-- one range of one index.
--
-- Text columns use the BINARY collation (byte order); integers (ord, the
-- booleans as 0/1, boot_index) are INTEGER. SQLite's ascending order puts
-- NULLs first, its descending order last: the index's order and its
-- reverse.

CREATE TABLE node_rows
(
    model                TEXT NOT NULL,
    id                   TEXT NOT NULL,
    body                 TEXT NOT NULL,
    ord                  INTEGER,
    name                 TEXT,
    uuid                 TEXT,
    provision_state      TEXT,
    power_state          TEXT,
    driver               TEXT,
    maintenance          INTEGER,
    instance_uuid        TEXT,
    resource_class       TEXT,
    conductor_group      TEXT,
    owner                TEXT,
    lessee               TEXT,
    retired              INTEGER,
    fault                TEXT,
    description          TEXT,
    created_at           TEXT,
    updated_at           TEXT,
    provision_updated_at TEXT,
    needs_work           INTEGER,
    power_sync           TEXT,
    PRIMARY KEY (model, id)
) STRICT;

CREATE INDEX node_rows_ord ON node_rows (model, ord);
CREATE INDEX node_rows_name ON node_rows (model, name, ord);
CREATE INDEX node_rows_uuid ON node_rows (model, uuid, ord);
CREATE INDEX node_rows_provision_state ON node_rows (model, provision_state, ord);
CREATE INDEX node_rows_power_state ON node_rows (model, power_state, ord);
CREATE INDEX node_rows_driver ON node_rows (model, driver, ord);
CREATE INDEX node_rows_maintenance ON node_rows (model, maintenance, ord);
CREATE INDEX node_rows_instance_uuid ON node_rows (model, instance_uuid, ord);
CREATE INDEX node_rows_resource_class ON node_rows (model, resource_class, ord);
CREATE INDEX node_rows_conductor_group ON node_rows (model, conductor_group, ord);
CREATE INDEX node_rows_owner ON node_rows (model, owner, ord);
CREATE INDEX node_rows_lessee ON node_rows (model, lessee, ord);
CREATE INDEX node_rows_retired ON node_rows (model, retired, ord);
CREATE INDEX node_rows_fault ON node_rows (model, fault, ord);
CREATE INDEX node_rows_created_at ON node_rows (model, created_at, ord);
CREATE INDEX node_rows_updated_at ON node_rows (model, updated_at, ord);
CREATE INDEX node_rows_provision_updated_at ON node_rows (model, provision_updated_at, ord);
CREATE INDEX node_rows_needs_work ON node_rows (model, needs_work, ord);
CREATE INDEX node_rows_power_sync ON node_rows (model, power_sync, ord);

CREATE TABLE port_rows
(
    model      TEXT NOT NULL,
    id         TEXT NOT NULL,
    body       TEXT NOT NULL,
    ord        INTEGER,
    node_uuid  TEXT,
    address    TEXT,
    created_at TEXT,
    updated_at TEXT,
    PRIMARY KEY (model, id)
) STRICT;

CREATE INDEX port_rows_ord ON port_rows (model, ord);
CREATE INDEX port_rows_node_uuid ON port_rows (model, node_uuid, ord);
CREATE INDEX port_rows_address ON port_rows (model, address, ord);
CREATE INDEX port_rows_created_at ON port_rows (model, created_at, ord);
CREATE INDEX port_rows_updated_at ON port_rows (model, updated_at, ord);

CREATE TABLE connector_rows
(
    model        TEXT NOT NULL,
    id           TEXT NOT NULL,
    body         TEXT NOT NULL,
    ord          INTEGER,
    node_uuid    TEXT,
    type         TEXT,
    connector_id TEXT,
    created_at   TEXT,
    updated_at   TEXT,
    PRIMARY KEY (model, id)
) STRICT;

CREATE INDEX connector_rows_ord ON connector_rows (model, ord);
CREATE INDEX connector_rows_node_uuid ON connector_rows (model, node_uuid, ord);
CREATE INDEX connector_rows_type ON connector_rows (model, type, ord);
CREATE INDEX connector_rows_type_connector_id ON connector_rows (model, type, connector_id);
CREATE INDEX connector_rows_connector_id ON connector_rows (model, connector_id, ord);
CREATE INDEX connector_rows_created_at ON connector_rows (model, created_at, ord);
CREATE INDEX connector_rows_updated_at ON connector_rows (model, updated_at, ord);

CREATE TABLE target_rows
(
    model       TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    ord         INTEGER,
    node_uuid   TEXT,
    volume_type TEXT,
    volume_id   TEXT,
    boot_index  INTEGER,
    created_at  TEXT,
    updated_at  TEXT,
    PRIMARY KEY (model, id)
) STRICT;

CREATE INDEX target_rows_ord ON target_rows (model, ord);
CREATE INDEX target_rows_node_uuid ON target_rows (model, node_uuid, ord);
CREATE INDEX target_rows_volume_type ON target_rows (model, volume_type, ord);
CREATE INDEX target_rows_volume_id ON target_rows (model, volume_id, ord);
CREATE INDEX target_rows_boot_index ON target_rows (model, boot_index, ord);
CREATE INDEX target_rows_created_at ON target_rows (model, created_at, ord);
CREATE INDEX target_rows_updated_at ON target_rows (model, updated_at, ord);

CREATE TABLE history_rows
(
    model     TEXT NOT NULL,
    id        TEXT NOT NULL,
    body      TEXT NOT NULL,
    ord       INTEGER,
    node_uuid TEXT,
    PRIMARY KEY (model, id)
) STRICT;

CREATE INDEX history_rows_ord ON history_rows (model, ord);
CREATE INDEX history_rows_node_uuid ON history_rows (model, node_uuid, ord);
-- Until now these models' documents lived in read_models, without keys.
-- Their keys are what the projections compute from each node's state; that
-- cannot be redone in SQL. The log is the truth and the read models are
-- derived from it, so the documents are dropped here together with their
-- models' checkpoints and recorded failures: the projector finds them at 0
-- on the next start and rebuilds them from the log into these tables (lists
-- are short of nodes until it has caught up). Scratch copies of a rebuild
-- under way (`nodes~…`) go too; that rebuild starts over.
DELETE FROM read_models
 WHERE CASE WHEN instr(model, '~') > 0 THEN substr(model, 1, instr(model, '~') - 1) ELSE model END IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');
DELETE FROM checkpoints
 WHERE CASE WHEN instr(model, '~') > 0 THEN substr(model, 1, instr(model, '~') - 1) ELSE model END IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');
DELETE FROM projection_failures
 WHERE CASE WHEN instr(model, '~') > 0 THEN substr(model, 1, instr(model, '~') - 1) ELSE model END IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');

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
-- Text columns are COLLATE "C" (byte order, like the SQLite and memory
-- backends); integers (ord, the booleans as 0/1, boot_index) are bigint;
-- index columns are declared NULLS FIRST, so the ascending order is a forward
-- scan and the descending one (NULLS LAST) a backward one.

CREATE TABLE node_rows
(
    model                text NOT NULL,
    id                   text COLLATE "C" NOT NULL,
    body                 jsonb NOT NULL,
    ord                  bigint,
    name                 text COLLATE "C",
    uuid                 text COLLATE "C",
    provision_state      text COLLATE "C",
    power_state          text COLLATE "C",
    driver               text COLLATE "C",
    maintenance          bigint,
    instance_uuid        text COLLATE "C",
    resource_class       text COLLATE "C",
    conductor_group      text COLLATE "C",
    owner                text COLLATE "C",
    lessee               text COLLATE "C",
    retired              bigint,
    fault                text COLLATE "C",
    description          text COLLATE "C",
    created_at           text COLLATE "C",
    updated_at           text COLLATE "C",
    provision_updated_at text COLLATE "C",
    needs_work           bigint,
    power_sync           text COLLATE "C",
    PRIMARY KEY (model, id)
);

CREATE INDEX node_rows_ord ON node_rows (model, ord ASC NULLS FIRST);
CREATE INDEX node_rows_name ON node_rows (model, name ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_uuid ON node_rows (model, uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_provision_state ON node_rows (model, provision_state ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_power_state ON node_rows (model, power_state ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_driver ON node_rows (model, driver ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_maintenance ON node_rows (model, maintenance ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_instance_uuid ON node_rows (model, instance_uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_resource_class ON node_rows (model, resource_class ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_conductor_group ON node_rows (model, conductor_group ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_owner ON node_rows (model, owner ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_lessee ON node_rows (model, lessee ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_retired ON node_rows (model, retired ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_fault ON node_rows (model, fault ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_created_at ON node_rows (model, created_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_updated_at ON node_rows (model, updated_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_provision_updated_at ON node_rows (model, provision_updated_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_needs_work ON node_rows (model, needs_work ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX node_rows_power_sync ON node_rows (model, power_sync ASC NULLS FIRST, ord ASC NULLS FIRST);

CREATE TABLE port_rows
(
    model      text NOT NULL,
    id         text COLLATE "C" NOT NULL,
    body       jsonb NOT NULL,
    ord        bigint,
    node_uuid  text COLLATE "C",
    address    text COLLATE "C",
    created_at text COLLATE "C",
    updated_at text COLLATE "C",
    PRIMARY KEY (model, id)
);

CREATE INDEX port_rows_ord ON port_rows (model, ord ASC NULLS FIRST);
CREATE INDEX port_rows_node_uuid ON port_rows (model, node_uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX port_rows_address ON port_rows (model, address ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX port_rows_created_at ON port_rows (model, created_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX port_rows_updated_at ON port_rows (model, updated_at ASC NULLS FIRST, ord ASC NULLS FIRST);

CREATE TABLE connector_rows
(
    model        text NOT NULL,
    id           text COLLATE "C" NOT NULL,
    body         jsonb NOT NULL,
    ord          bigint,
    node_uuid    text COLLATE "C",
    type         text COLLATE "C",
    connector_id text COLLATE "C",
    created_at   text COLLATE "C",
    updated_at   text COLLATE "C",
    PRIMARY KEY (model, id)
);

CREATE INDEX connector_rows_ord ON connector_rows (model, ord ASC NULLS FIRST);
CREATE INDEX connector_rows_node_uuid ON connector_rows (model, node_uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX connector_rows_type ON connector_rows (model, type ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX connector_rows_type_connector_id ON connector_rows (model, type, connector_id);
CREATE INDEX connector_rows_connector_id ON connector_rows (model, connector_id ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX connector_rows_created_at ON connector_rows (model, created_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX connector_rows_updated_at ON connector_rows (model, updated_at ASC NULLS FIRST, ord ASC NULLS FIRST);

CREATE TABLE target_rows
(
    model       text NOT NULL,
    id          text COLLATE "C" NOT NULL,
    body        jsonb NOT NULL,
    ord         bigint,
    node_uuid   text COLLATE "C",
    volume_type text COLLATE "C",
    volume_id   text COLLATE "C",
    boot_index  bigint,
    created_at  text COLLATE "C",
    updated_at  text COLLATE "C",
    PRIMARY KEY (model, id)
);

CREATE INDEX target_rows_ord ON target_rows (model, ord ASC NULLS FIRST);
CREATE INDEX target_rows_node_uuid ON target_rows (model, node_uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX target_rows_volume_type ON target_rows (model, volume_type ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX target_rows_volume_id ON target_rows (model, volume_id ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX target_rows_boot_index ON target_rows (model, boot_index ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX target_rows_created_at ON target_rows (model, created_at ASC NULLS FIRST, ord ASC NULLS FIRST);
CREATE INDEX target_rows_updated_at ON target_rows (model, updated_at ASC NULLS FIRST, ord ASC NULLS FIRST);

CREATE TABLE history_rows
(
    model     text NOT NULL,
    id        text COLLATE "C" NOT NULL,
    body      jsonb NOT NULL,
    ord       bigint,
    node_uuid text COLLATE "C",
    PRIMARY KEY (model, id)
);

CREATE INDEX history_rows_ord ON history_rows (model, ord ASC NULLS FIRST);
CREATE INDEX history_rows_node_uuid ON history_rows (model, node_uuid ASC NULLS FIRST, ord ASC NULLS FIRST);
-- Until now these models' documents lived in read_models, without keys.
-- Their keys are what the projections compute from each node's state; that
-- cannot be redone in SQL. The log is the truth and the read models are
-- derived from it, so the documents are dropped here together with their
-- models' checkpoints and recorded failures: the projector finds them at 0
-- on the next start and rebuilds them from the log into these tables (lists
-- are short of nodes until it has caught up). Scratch copies of a rebuild
-- under way (`nodes~…`) go too; that rebuild starts over.
DELETE FROM read_models
 WHERE split_part(model, '~', 1) IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');
DELETE FROM checkpoints
 WHERE split_part(model, '~', 1) IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');
DELETE FROM projection_failures
 WHERE split_part(model, '~', 1) IN ('nodes', 'ports', 'connectors', 'targets', 'node_history');

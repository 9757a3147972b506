-- Projection documents and checkpoints.
--
-- `id` uses the "C" collation so that listing a model ORDER BY id gives byte
-- order, the same order as the SQLite (BINARY) and memory (BTreeMap) backends,
-- whatever the database's default collation is.
CREATE TABLE read_models
(
    model text             NOT NULL,
    id    text COLLATE "C" NOT NULL,
    body  jsonb            NOT NULL,
    PRIMARY KEY (model, id)
);

-- The feed position each model has applied up to. Moved only by compare-and-set
-- in the same transaction as the model's documents.
CREATE TABLE checkpoints
(
    model    text   NOT NULL PRIMARY KEY,
    position bigint NOT NULL CHECK (position >= 0)
);

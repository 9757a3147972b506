-- Projection documents (JSON text) and checkpoints. The default BINARY collation
-- makes ORDER BY id byte order, like the other backends.
CREATE TABLE read_models
(
    model TEXT NOT NULL,
    id    TEXT NOT NULL,
    body  TEXT NOT NULL,
    PRIMARY KEY (model, id)
) STRICT;

CREATE TABLE checkpoints
(
    model    TEXT    NOT NULL PRIMARY KEY,
    position INTEGER NOT NULL CHECK (position >= 0)
) STRICT;

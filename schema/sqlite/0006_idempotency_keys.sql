-- Idempotency keys of writes (`Idempotency-Key`, see src/api/idempotency.rs):
-- one row per caller and key, holding the request's fingerprint (a SHA-256 of
-- its method, path, version and body: never the body, which may hold a
-- password), when the key was taken (ms since the epoch) and, once the
-- request was answered, the answer (status, headers, body as the client saw
-- it: API answers mask secrets). Rows older than the retention window are
-- deleted when a key is next taken.
CREATE TABLE idempotency_keys
(
    key         TEXT    NOT NULL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    taken_ms    INTEGER NOT NULL,
    answer      TEXT
) STRICT;

CREATE INDEX idempotency_keys_taken ON idempotency_keys (taken_ms);

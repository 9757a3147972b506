-- Idempotency keys of writes (`Idempotency-Key`, see src/api/idempotency.rs):
-- one row per caller and key, holding the request's fingerprint (a SHA-256 of
-- its method, path, version and body: never the body, which may hold a
-- password), when the key was taken (ms since the epoch) and, once the
-- request was answered, the answer (status, headers, body as the client saw
-- it: API answers mask secrets). Rows older than the retention window are
-- deleted when a key is next taken.
CREATE TABLE IF NOT EXISTS idempotency_keys
(
    key         text   NOT NULL PRIMARY KEY,
    fingerprint text   NOT NULL,
    taken_ms    bigint NOT NULL,
    answer      text
);

CREATE INDEX IF NOT EXISTS idempotency_keys_taken ON idempotency_keys (taken_ms);

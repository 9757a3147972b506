-- Uniqueness claims, written in the same transaction as the events that make them.
CREATE TABLE claims
(
    scope TEXT NOT NULL,
    key   TEXT NOT NULL,
    owner TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;

CREATE INDEX claims_owner ON claims (owner);

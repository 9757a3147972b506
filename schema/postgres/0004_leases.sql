-- Leases: which ironledger process works a node right now. A lease is held
-- until `expires_at`; its holder renews it while working. A process that dies
-- stops renewing, and another one takes the node over once the lease expires.
CREATE TABLE IF NOT EXISTS leases (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

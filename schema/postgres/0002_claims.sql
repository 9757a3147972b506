-- Uniqueness claims (e.g. a node name, a connector's connector_id), written in
-- the same transaction as the events that make them. The primary key is what
-- makes two concurrent claimants collide; the owner is an aggregate id.
CREATE TABLE claims
(
    scope text NOT NULL,
    key   text NOT NULL,
    owner text NOT NULL,
    PRIMARY KEY (scope, key)
);

-- ReleaseAll (node deleted) deletes by owner.
CREATE INDEX claims_owner ON claims (owner);

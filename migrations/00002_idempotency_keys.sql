-- Idempotency keys: a change sent with an Idempotency-Key applies at most
-- once, and its retries are answered with its outcome.

-- +goose Up

-- idempotency_keys: the key of each applied change that came with one,
-- written in the same transaction as the change's audit row, so a key
-- exists exactly when its change was applied. request_hash identifies the
-- request the key came with, so the key sent with another request is
-- refused. audit_seq names the change's audit row; it has no foreign key,
-- which would stand in the way of the audit log's own refusal of TRUNCATE,
-- and needs none: both rows are written by one statement and audit rows
-- are never deleted. Rows older than store.KeyTTL (24 hours) are deleted
-- by the sweeper; nothing else edits them.
CREATE TABLE idempotency_keys (
    key          text PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 128),
    request_hash text NOT NULL,
    audit_seq    bigint NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- A change whose commit was not acknowledged is looked up by its request
-- ID, to learn whether it was applied.
CREATE INDEX switch_audit_log_request_id ON switch_audit_log (request_id);

GRANT SELECT, INSERT, DELETE ON idempotency_keys TO switchyard_app;

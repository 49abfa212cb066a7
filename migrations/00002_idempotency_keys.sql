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

-- switch_applied_entry returns the applied audit row of a change (its
-- request ID, action and revision), if there is one, once the transaction
-- holding the runtime head, if any, has ended: a change holds the head from
-- its first round trip to its end, so what this reads is final. It is
-- volatile, so its query takes a snapshot after the wait, and it is one
-- statement, so the store asks in a single round trip.
-- +goose StatementBegin
CREATE FUNCTION switch_applied_entry(p_request_id text, p_action text, p_revision bigint)
RETURNS SETOF switch_audit_log
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM FROM runtime_head FOR KEY SHARE;
    RETURN QUERY SELECT * FROM switch_audit_log
        WHERE request_id = p_request_id AND action = p_action AND revision = p_revision AND outcome = 'applied'
        ORDER BY seq DESC LIMIT 1;
END
$$;
-- +goose StatementEnd

GRANT SELECT, INSERT, DELETE ON idempotency_keys TO switchyard_app;

-- The Postgres store's schema: immutable revisions as the record of truth,
-- normalized tables mirroring the current revision for people and reports,
-- the append-only hash-chained audit log and the session snapshots.
--
-- Every object is created unqualified, in the first schema of the
-- search_path, so one database can hold several installations side by side.

-- +goose Up

-- revisions: every accepted change makes a new, numbered row; the whole
-- evaluator.Revision is the immutable record. Nothing edits a revision.
CREATE TABLE revisions (
    number     bigint PRIMARY KEY CHECK (number > 0),
    created_at timestamptz NOT NULL,
    state      jsonb NOT NULL
);

-- runtime_head: the one row naming the current revision. Writers lock it
-- (SELECT ... FOR UPDATE), which serializes changes and gives the expected-
-- revision check something to wait on.
CREATE TABLE runtime_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint NOT NULL REFERENCES revisions (number)
);

-- The normalized view of the current revision, rewritten with each one.
CREATE TABLE module_catalog (
    module_key text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('algorithm', 'infra')),
    versions   text[] NOT NULL CHECK (cardinality(versions) > 0)
);

CREATE TABLE system_flags (
    name    text PRIMARY KEY,
    enabled boolean NOT NULL
);

-- config holds the profile's module defaults: {"module": {"version", "enabled"}}.
CREATE TABLE runtime_profiles (
    name      text PRIMARY KEY,
    config    jsonb NOT NULL,
    is_active boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX runtime_profiles_one_active ON runtime_profiles (is_active) WHERE is_active;

CREATE TABLE module_overrides (
    module_key  text PRIMARY KEY REFERENCES module_catalog (module_key),
    version_key text,
    is_enabled  boolean,
    CHECK (version_key IS NOT NULL OR is_enabled IS NOT NULL)
);

-- session_runtime_snapshot: a session's pin. Rows are never updated; an
-- expired one is deleted (by the sweep, or when the session ID is reused).
-- The foreign key keeps a revision pinned by a session from being removed.
CREATE TABLE session_runtime_snapshot (
    session_id              text PRIMARY KEY,
    user_id                 text NOT NULL,
    revision                bigint NOT NULL REFERENCES revisions (number),
    profile                 text NOT NULL,
    modules                 jsonb NOT NULL,
    exam_mode_at_start      boolean NOT NULL,
    freeze_updates_at_start boolean NOT NULL,
    created_at              timestamptz NOT NULL,
    expires_at              timestamptz NOT NULL
);
CREATE INDEX session_runtime_snapshot_expires_at ON session_runtime_snapshot (expires_at);

-- switch_audit_log: one row per attempted change, applied or rejected.
-- seq, created_at, prev_hash and hash are set by the BEFORE INSERT trigger
-- below, whatever the inserter sends. before and after are json, not
-- jsonb, so their bytes are kept exactly as hashed.
CREATE TABLE switch_audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq        bigint NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    actor      text NOT NULL,
    role       text NOT NULL,
    action     text NOT NULL,
    target     text NOT NULL,
    reason     text NOT NULL,
    phrase     text NOT NULL,
    request_id text NOT NULL,
    outcome    text NOT NULL CHECK (outcome IN ('applied', 'rejected')),
    why        text NOT NULL,
    revision   bigint NOT NULL,
    before     json,
    after      json,
    prev_hash  text NOT NULL,
    hash       text NOT NULL
);

-- switch_audit_field encodes one field of the canonical row as
-- store.Canonical does: byte length, ':', the bytes, ';'.
-- +goose StatementBegin
CREATE FUNCTION switch_audit_field(f text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT octet_length(convert_to(f, 'UTF8'))::text || ':' || f || ';'
$$;
-- +goose StatementEnd

-- switch_audit_chain numbers and hashes a new audit row. The advisory lock
-- (held to the end of the transaction) makes reading the newest row and
-- appending the next one a single step, so seq is gapless and each row
-- chains to the one committed before it. The hash is
-- hex(sha256(prev_hash || canonical row)), exactly store.ChainHash; the
-- time is encoded in UTC whatever the session's time zone.
-- +goose StatementBegin
CREATE FUNCTION switch_audit_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last_seq  bigint;
    last_hash text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'switch_audit_log: append in a READ COMMITTED transaction, so the chain sees the newest row';
    END IF;
    -- 1937339233 names this lock class; the table's oid keeps installations
    -- in different schemas from waiting on each other.
    PERFORM pg_advisory_xact_lock(1937339233, TG_RELID::int);
    SELECT seq, hash INTO last_seq, last_hash FROM switch_audit_log ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, '');
    NEW.created_at := clock_timestamp();
    NEW.hash := encode(sha256(convert_to(NEW.prev_hash
        || switch_audit_field(NEW.seq::text)
        || switch_audit_field(to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || switch_audit_field(NEW.actor)
        || switch_audit_field(NEW.role)
        || switch_audit_field(NEW.action)
        || switch_audit_field(NEW.target)
        || switch_audit_field(NEW.reason)
        || switch_audit_field(NEW.phrase)
        || switch_audit_field(NEW.request_id)
        || switch_audit_field(NEW.outcome)
        || switch_audit_field(NEW.why)
        || switch_audit_field(NEW.revision::text)
        || switch_audit_field(coalesce(NEW.before::text, ''))
        || switch_audit_field(coalesce(NEW.after::text, '')), 'UTF8')), 'hex');
    RETURN NEW;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER switch_audit_log_chain BEFORE INSERT ON switch_audit_log
    FOR EACH ROW EXECUTE FUNCTION switch_audit_chain();

-- refuse_change makes a table append-only in the database itself, for every
-- role including the owner (who would have to disable the trigger first,
-- which audit verification then catches).
-- +goose StatementBegin
CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER switch_audit_log_append_only BEFORE UPDATE OR DELETE ON switch_audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER switch_audit_log_no_truncate BEFORE TRUNCATE ON switch_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER revisions_immutable BEFORE UPDATE ON revisions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER session_runtime_snapshot_immutable BEFORE UPDATE ON session_runtime_snapshot
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- switchyard_app is the role the service works as (store/postgres runs SET
-- ROLE switchyard_app on every connection): it may read and append the
-- audit log but never update, delete or truncate it. Several installations
-- share the cluster-wide role, and may create it at the same moment. An
-- owner without CREATEROLE needs a DBA to create it and grant it to them
-- first; the migration then uses it as it is.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'switchyard_app') THEN
        CREATE ROLE switchyard_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchyard_app', 'MEMBER') THEN
        EXECUTE format('GRANT switchyard_app TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO switchyard_app', current_schema());
END
$$;
-- +goose StatementEnd

GRANT SELECT ON goose_db_version TO switchyard_app;
GRANT SELECT, INSERT ON revisions TO switchyard_app;
GRANT SELECT, UPDATE ON runtime_head TO switchyard_app;
GRANT SELECT, INSERT, DELETE ON module_catalog, system_flags, runtime_profiles, module_overrides TO switchyard_app;
GRANT SELECT, INSERT, DELETE ON session_runtime_snapshot TO switchyard_app;
GRANT SELECT, INSERT ON switch_audit_log TO switchyard_app;

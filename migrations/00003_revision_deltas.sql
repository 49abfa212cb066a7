-- Revisions stored as deltas: a revision that changes a few of 10,000 flags
-- no longer stores all 10,000 again.

-- +goose Up

-- A row with base NULL holds its whole revision in state, as every row did
-- before this migration. A row with base set holds in state only what its
-- revision changed from the one numbered just below it (the small parts
-- whole, the flags set or deleted, the shared evaluators and flag-set
-- metadata only when they changed), and base names the nearest whole row
-- below it: revision n is read by applying the rows after base, in order,
-- to base. chain_bytes adds up the bytes of those deltas, up to and
-- including this row, so a writer can tell when a whole row is due again
-- (store/postgres, delta.go) without reading them.
ALTER TABLE revisions
    ADD COLUMN base bigint REFERENCES revisions (number) CHECK (base < number),
    ADD COLUMN chain_bytes bigint NOT NULL DEFAULT 0 CHECK (chain_bytes >= 0);

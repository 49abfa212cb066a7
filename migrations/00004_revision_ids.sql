-- Revision IDs: a revision's number repeats across histories (a database
-- restored from an earlier backup numbers its next changes as the lost
-- ones were numbered); its ID never does, so every cache and client
-- compares IDs.

-- +goose Up

-- id names the revision and no other, in any history: 128 random bits in
-- hex, drawn by the writer when it makes the revision
-- (switchyard.NewRevisionID). The rows stored before this migration get
-- theirs here, one random ID each (the default is evaluated per row as the
-- table is rewritten, which fires no row trigger: revisions stay
-- immutable). A revision's parent is the row numbered just below it, and
-- the rows written from now on also record their parent's ID in state.
ALTER TABLE revisions ADD COLUMN id text NOT NULL
    DEFAULT md5(random()::text || clock_timestamp()::text);
ALTER TABLE revisions ALTER COLUMN id DROP DEFAULT;
ALTER TABLE revisions ADD CONSTRAINT revisions_id_unique UNIQUE (id);

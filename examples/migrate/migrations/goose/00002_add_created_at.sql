-- +goose Up
ALTER TABLE notes ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
CREATE INDEX notes_created_at ON notes(created_at);

-- +goose Down
DROP INDEX notes_created_at;
ALTER TABLE notes DROP COLUMN created_at;

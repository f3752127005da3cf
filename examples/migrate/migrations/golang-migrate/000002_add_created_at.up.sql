ALTER TABLE notes ADD COLUMN created_at TEXT NOT NULL DEFAULT '';
CREATE INDEX notes_created_at ON notes(created_at);

DROP INDEX notes_created_at;
ALTER TABLE notes DROP COLUMN created_at;

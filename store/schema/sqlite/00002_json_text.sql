-- +goose Up
-- SQLite keeps documents as text already (PostgreSQL's 00002 changes JSONB to JSON).
SELECT 1;

-- +goose Down
SELECT 1;

-- +goose Up
-- A hub device group's ID is unique in its hub, not across hubs: two hubs
-- may each have a group "berlin". SQLite changes a primary key by
-- rebuilding the table.
CREATE TABLE hub_device_groups_new (
    hub_id  TEXT NOT NULL REFERENCES hubs (id) ON DELETE CASCADE,
    id      TEXT NOT NULL,
    name_lc TEXT NOT NULL,
    doc     TEXT NOT NULL,
    etag    TEXT NOT NULL,
    PRIMARY KEY (hub_id, id),
    UNIQUE (hub_id, name_lc)
);
INSERT INTO hub_device_groups_new (hub_id, id, name_lc, doc, etag)
    SELECT hub_id, id, name_lc, doc, etag FROM hub_device_groups;
DROP TABLE hub_device_groups;
ALTER TABLE hub_device_groups_new RENAME TO hub_device_groups;

-- +goose Down
-- Fails if two hubs share a group ID.
CREATE TABLE hub_device_groups_old (
    id      TEXT PRIMARY KEY,
    hub_id  TEXT NOT NULL REFERENCES hubs (id) ON DELETE CASCADE,
    name_lc TEXT NOT NULL,
    doc     TEXT NOT NULL,
    etag    TEXT NOT NULL,
    UNIQUE (hub_id, name_lc)
);
INSERT INTO hub_device_groups_old (id, hub_id, name_lc, doc, etag)
    SELECT id, hub_id, name_lc, doc, etag FROM hub_device_groups;
DROP TABLE hub_device_groups;
ALTER TABLE hub_device_groups_old RENAME TO hub_device_groups;

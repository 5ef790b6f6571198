-- +goose Up
-- A hub device group's ID is unique in its hub, not across hubs: two hubs
-- may each have a group "berlin".
ALTER TABLE hub_device_groups DROP CONSTRAINT hub_device_groups_pkey;
ALTER TABLE hub_device_groups ADD PRIMARY KEY (hub_id, id);

-- +goose Down
-- Fails if two hubs share a group ID.
ALTER TABLE hub_device_groups DROP CONSTRAINT hub_device_groups_pkey;
ALTER TABLE hub_device_groups ADD PRIMARY KEY (id);

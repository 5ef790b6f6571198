-- +goose Up
-- Lists of a catalog's devices by group (or with none), and of catalogs in
-- a resource group, in key order.
CREATE INDEX devices_catalog_group ON devices (catalog_id, device_group_id, id);
CREATE INDEX catalogs_location ON catalogs (subscription_id, rg_lc, tenant_id);

-- +goose Down
DROP INDEX catalogs_location;
DROP INDEX devices_catalog_group;

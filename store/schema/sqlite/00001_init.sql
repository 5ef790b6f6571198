-- +goose Up
-- Every table keeps the record as a JSON document (doc) next to the typed
-- columns its keys, filters and orderings need. Text compares
-- bytewise (BINARY), as the "C" collation does on PostgreSQL.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE principals (
    id      TEXT PRIMARY KEY,
    name_lc TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX principals_type ON principals (type, id);

CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    created_ns BIGINT NOT NULL,
    doc        TEXT NOT NULL
);

CREATE TABLE role_definitions (
    id      TEXT PRIMARY KEY,
    name_lc TEXT NOT NULL UNIQUE,
    type    TEXT NOT NULL,
    doc     TEXT NOT NULL
);

CREATE TABLE role_assignments (
    id                 TEXT PRIMARY KEY,
    scope_lc           TEXT NOT NULL,
    role_definition_id TEXT NOT NULL REFERENCES role_definitions (id),
    principal_id       TEXT NOT NULL,
    doc                TEXT NOT NULL,
    UNIQUE (principal_id, role_definition_id, scope_lc)
);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id, id);
CREATE INDEX role_assignments_role ON role_assignments (role_definition_id, id);
CREATE INDEX role_assignments_scope ON role_assignments (scope_lc, id);

CREATE TABLE legacy_roles (
    catalog_id   TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    role         TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (catalog_id, principal_id, role)
);
CREATE INDEX legacy_roles_principal ON legacy_roles (principal_id, catalog_id, role);

CREATE TABLE subscriptions (
    id  TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE resource_groups (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    name_lc         TEXT NOT NULL,
    doc             TEXT NOT NULL,
    PRIMARY KEY (subscription_id, name_lc)
);

CREATE TABLE catalogs (
    tenant_id       TEXT PRIMARY KEY,
    subscription_id TEXT,
    rg_lc           TEXT,
    name_lc         TEXT,
    doc             TEXT NOT NULL,
    etag            TEXT NOT NULL,
    UNIQUE (subscription_id, rg_lc, name_lc)
);
CREATE INDEX catalogs_legacy ON catalogs (tenant_id) WHERE name_lc IS NULL;

CREATE TABLE products (
    id         TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs (tenant_id) ON DELETE CASCADE,
    name_lc    TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    UNIQUE (catalog_id, name_lc)
);
CREATE INDEX products_catalog ON products (catalog_id, id);

CREATE TABLE device_groups (
    id         TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs (tenant_id) ON DELETE CASCADE,
    product_id TEXT NOT NULL REFERENCES products (id),
    name_lc    TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    UNIQUE (product_id, name_lc)
);
CREATE INDEX device_groups_catalog ON device_groups (catalog_id, id);
CREATE INDEX device_groups_product ON device_groups (product_id, id);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY,
    catalog_id      TEXT NOT NULL REFERENCES catalogs (tenant_id) ON DELETE CASCADE,
    product_id      TEXT REFERENCES products (id),
    device_group_id TEXT REFERENCES device_groups (id),
    doc             TEXT NOT NULL,
    etag            TEXT NOT NULL
);
CREATE INDEX devices_catalog ON devices (catalog_id, id);
CREATE INDEX devices_product ON devices (product_id, id);
CREATE INDEX devices_group ON devices (device_group_id, id);

CREATE TABLE images (
    id         TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL REFERENCES catalogs (tenant_id) ON DELETE CASCADE,
    doc        TEXT NOT NULL
);
CREATE INDEX images_catalog ON images (catalog_id, id);

CREATE TABLE image_contents (
    id      TEXT PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    content BLOB NOT NULL
);

CREATE TABLE deployments (
    id              TEXT PRIMARY KEY,
    catalog_id      TEXT NOT NULL REFERENCES catalogs (tenant_id) ON DELETE CASCADE,
    device_group_id TEXT NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE,
    name_lc         TEXT NOT NULL,
    deployed_ns     BIGINT NOT NULL,
    doc             TEXT NOT NULL,
    UNIQUE (device_group_id, name_lc)
);
CREATE INDEX deployments_catalog ON deployments (catalog_id, id);
CREATE INDEX deployments_group ON deployments (device_group_id, id);
CREATE INDEX deployments_newest ON deployments (device_group_id, deployed_ns, id);

CREATE TABLE deployment_images (
    deployment_id TEXT NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    image_id      TEXT NOT NULL REFERENCES images (id),
    PRIMARY KEY (deployment_id, image_id)
);
CREATE INDEX deployment_images_image ON deployment_images (image_id);

CREATE TABLE certificates (
    catalog_id TEXT NOT NULL,
    serial     TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    status     TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (catalog_id, serial)
);
CREATE INDEX certificates_newest ON certificates (catalog_id, created_ns, serial);

CREATE TABLE operations (
    id         TEXT PRIMARY KEY,
    catalog_id TEXT,
    doc        TEXT NOT NULL
);
CREATE INDEX operations_catalog ON operations (catalog_id);

CREATE TABLE device_insights (
    id         TEXT PRIMARY KEY,
    catalog_id TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    start_ns   BIGINT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX device_insights_catalog ON device_insights (catalog_id, id);
CREATE INDEX device_insights_device ON device_insights (catalog_id, device_id, id);

CREATE TABLE hubs (
    id              TEXT PRIMARY KEY,
    name_lc         TEXT NOT NULL UNIQUE,
    host_lc         TEXT NOT NULL UNIQUE,
    subscription_id TEXT,
    rg_lc           TEXT,
    doc             TEXT NOT NULL,
    etag            TEXT NOT NULL
);
CREATE INDEX hubs_location ON hubs (subscription_id, rg_lc, id);

CREATE TABLE device_identities (
    hub_id           TEXT NOT NULL REFERENCES hubs (id) ON DELETE CASCADE,
    device_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    connection_state TEXT NOT NULL,
    model_id         TEXT NOT NULL,
    doc              TEXT NOT NULL,
    etag             TEXT NOT NULL,
    PRIMARY KEY (hub_id, device_id)
);
CREATE INDEX device_identities_status ON device_identities (hub_id, status, device_id);
CREATE INDEX device_identities_connection ON device_identities (hub_id, connection_state, device_id);
CREATE INDEX device_identities_model ON device_identities (hub_id, model_id, device_id);

CREATE TABLE twins (
    hub_id    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    doc       TEXT NOT NULL,
    etag      TEXT NOT NULL,
    PRIMARY KEY (hub_id, device_id),
    FOREIGN KEY (hub_id, device_id) REFERENCES device_identities (hub_id, device_id) ON DELETE CASCADE
);

CREATE TABLE hub_device_groups (
    id      TEXT PRIMARY KEY,
    hub_id  TEXT NOT NULL REFERENCES hubs (id) ON DELETE CASCADE,
    name_lc TEXT NOT NULL,
    doc     TEXT NOT NULL,
    etag    TEXT NOT NULL,
    UNIQUE (hub_id, name_lc)
);

CREATE TABLE device_templates (
    id   TEXT PRIMARY KEY,
    doc  TEXT NOT NULL,
    etag TEXT NOT NULL
);

CREATE TABLE c2d_messages (
    id          TEXT PRIMARY KEY,
    hub_id      TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    enqueued_ns BIGINT NOT NULL,
    doc         TEXT NOT NULL,
    FOREIGN KEY (hub_id, device_id) REFERENCES device_identities (hub_id, device_id) ON DELETE CASCADE
);
CREATE INDEX c2d_messages_device ON c2d_messages (hub_id, device_id, enqueued_ns, id);

CREATE TABLE jobs (
    hub_id TEXT NOT NULL REFERENCES hubs (id) ON DELETE CASCADE,
    id     TEXT NOT NULL,
    type   TEXT NOT NULL,
    status TEXT NOT NULL,
    doc    TEXT NOT NULL,
    PRIMARY KEY (hub_id, id)
);

CREATE TABLE job_devices (
    hub_id    TEXT NOT NULL,
    job_id    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    doc       TEXT NOT NULL,
    PRIMARY KEY (hub_id, job_id, device_id),
    FOREIGN KEY (hub_id, job_id) REFERENCES jobs (hub_id, id) ON DELETE CASCADE
);

CREATE TABLE provisioning_services (
    id              TEXT PRIMARY KEY,
    name_lc         TEXT NOT NULL UNIQUE,
    scope_lc        TEXT NOT NULL UNIQUE,
    subscription_id TEXT,
    rg_lc           TEXT,
    doc             TEXT NOT NULL,
    etag            TEXT NOT NULL
);
CREATE INDEX provisioning_services_location ON provisioning_services (subscription_id, rg_lc, id);

CREATE TABLE enrollment_groups (
    service_id TEXT NOT NULL REFERENCES provisioning_services (id) ON DELETE CASCADE,
    id_lc      TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    PRIMARY KEY (service_id, id_lc)
);

CREATE TABLE individual_enrollments (
    service_id TEXT NOT NULL REFERENCES provisioning_services (id) ON DELETE CASCADE,
    id_lc      TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    PRIMARY KEY (service_id, id_lc)
);

CREATE TABLE registrations (
    service_id TEXT NOT NULL REFERENCES provisioning_services (id) ON DELETE CASCADE,
    id_lc      TEXT NOT NULL,
    group_lc   TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    PRIMARY KEY (service_id, id_lc)
);
CREATE INDEX registrations_group ON registrations (service_id, group_lc, id_lc);

CREATE TABLE provisioning_cas (
    service_id TEXT NOT NULL REFERENCES provisioning_services (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    doc        TEXT NOT NULL,
    etag       TEXT NOT NULL,
    PRIMARY KEY (service_id, name)
);

CREATE TABLE migrations (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    rg_lc           TEXT NOT NULL,
    name_lc         TEXT NOT NULL,
    state           TEXT NOT NULL,
    doc             TEXT NOT NULL,
    etag            TEXT NOT NULL,
    UNIQUE (subscription_id, rg_lc, name_lc)
);
CREATE INDEX migrations_state ON migrations (state, id);

CREATE TABLE migration_waves (
    migration_id TEXT NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    idx          BIGINT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (migration_id, idx)
);

CREATE TABLE migration_devices (
    migration_id TEXT NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    wave         BIGINT NOT NULL,
    state        TEXT NOT NULL,
    doc          TEXT NOT NULL,
    PRIMARY KEY (migration_id, device_id)
);
CREATE INDEX migration_devices_wave ON migration_devices (migration_id, wave, state, device_id);
CREATE INDEX migration_devices_state ON migration_devices (migration_id, state, device_id);

CREATE TABLE migration_transitions (
    seq          INTEGER PRIMARY KEY,
    migration_id TEXT NOT NULL REFERENCES migrations (id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX migration_transitions_device ON migration_transitions (migration_id, device_id, seq);
CREATE INDEX migration_transitions_all ON migration_transitions (migration_id, seq);

CREATE TABLE audit_events (
    id           TEXT PRIMARY KEY,
    time_ns      BIGINT NOT NULL,
    surface      TEXT NOT NULL,
    operation    TEXT NOT NULL,
    catalog_id   TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    principal_name TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    result       TEXT NOT NULL,
    doc          TEXT NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (time_ns, id);
CREATE INDEX audit_events_catalog ON audit_events (catalog_id, time_ns, id);
CREATE INDEX audit_events_principal ON audit_events (principal_id, time_ns, id);

CREATE TABLE device_events (
    id        TEXT PRIMARY KEY,
    time_ns   BIGINT NOT NULL,
    hub_id    TEXT NOT NULL,
    device_id TEXT NOT NULL,
    type      TEXT NOT NULL,
    doc       TEXT NOT NULL
);
CREATE INDEX device_events_time ON device_events (time_ns, id);
CREATE INDEX device_events_hub ON device_events (hub_id, time_ns, id);
CREATE INDEX device_events_device ON device_events (hub_id, device_id, time_ns, id);

CREATE TABLE alert_rules (
    id      TEXT PRIMARY KEY,
    name_lc TEXT NOT NULL UNIQUE,
    doc     TEXT NOT NULL,
    etag    TEXT NOT NULL
);

CREATE TABLE export_destinations (
    id      TEXT PRIMARY KEY,
    name_lc TEXT NOT NULL UNIQUE,
    doc     TEXT NOT NULL,
    etag    TEXT NOT NULL
);

-- +goose Down
SELECT 'irreversible';

package store

import (
	"context"

	"github.com/ferry-iot/ferry"
)

var provisioningServices = &table[ferry.ProvisioningService]{
	name: "provisioning_services", what: "provisioning service",
	key: []string{"id"}, cols: []string{"name_lc", "scope_lc", "subscription_id", "rg_lc"},
	row: func(s *ferry.ProvisioningService) []any {
		return []any{s.ID, lower(s.Name), lower(s.IDScope), nullable(s.SubscriptionID), nullable(lower(s.ResourceGroup))}
	},
	etag: func(s *ferry.ProvisioningService) *string { return &s.ETag },
}

// CreateProvisioningService stores a service.
func (o *ops) CreateProvisioningService(ctx context.Context, s *ferry.ProvisioningService) error {
	if s.ID == "" || s.Name == "" || s.IDScope == "" {
		return ferry.Errorf(ferry.EINVALID, "A provisioning service needs an ID, a name and an ID scope.")
	}
	return provisioningServices.insert(ctx, o.d, o.wq(), s)
}

// GetProvisioningService returns a service by ID.
func (o *ops) GetProvisioningService(ctx context.Context, id string) (*ferry.ProvisioningService, error) {
	return provisioningServices.getKey(ctx, o.hotR(), id)
}

// GetProvisioningServiceByName returns a service by name (case-insensitive).
func (o *ops) GetProvisioningServiceByName(ctx context.Context, name string) (*ferry.ProvisioningService, error) {
	return provisioningServices.get(ctx, o.rq(), (&cond{}).eq("name_lc", lower(name)))
}

// GetProvisioningServiceByScope returns a service by ID scope (case-insensitive).
func (o *ops) GetProvisioningServiceByScope(ctx context.Context, idScope string) (*ferry.ProvisioningService, error) {
	return provisioningServices.get(ctx, o.hotR(), (&cond{}).eq("scope_lc", lower(idScope)))
}

// ListProvisioningServices returns a page of services ordered by ID.
func (o *ops) ListProvisioningServices(ctx context.Context, f ferry.ProvisioningServiceFilter) (ferry.Page[*ferry.ProvisioningService], error) {
	c := &cond{}
	if f.SubscriptionID != "" {
		c.eq("subscription_id", f.SubscriptionID)
	}
	if f.ResourceGroup != "" {
		c.eq("rg_lc", lower(f.ResourceGroup))
	}
	return provisioningServices.list(ctx, o.rq(), c, []string{"id"}, false, f.ListOptions)
}

// UpdateProvisioningService replaces a service if ifMatch matches.
func (o *ops) UpdateProvisioningService(ctx context.Context, s *ferry.ProvisioningService, ifMatch string) error {
	return provisioningServices.update(ctx, o.d, o.wq(), s, ifMatch)
}

// DeleteProvisioningService removes a service with its enrollments and registrations.
func (o *ops) DeleteProvisioningService(ctx context.Context, id string) error {
	return provisioningServices.del(ctx, o.d, o.wq(), []any{id}, "")
}

// putIfMatch creates or replaces a record. With a non-empty ifMatch the
// record must exist with that ETag (EPRECONDITION otherwise).
func putIfMatch[T any](ctx context.Context, o *ops, t *table[T], v *T, ifMatch string) error {
	if normalizeETag(ifMatch) == "" {
		return t.upsert(ctx, o.d, o.wq(), v)
	}
	err := t.update(ctx, o.d, o.wq(), v, ifMatch)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return ferry.Errorf(ferry.EPRECONDITION, "The %s does not exist (ETag mismatch).", t.what)
	}
	return err
}

var enrollmentGroups = &table[ferry.EnrollmentGroup]{
	name: "enrollment_groups", what: "enrollment group",
	key:  []string{"service_id", "id_lc"},
	row:  func(g *ferry.EnrollmentGroup) []any { return []any{g.ServiceID, lower(g.ID)} },
	etag: func(g *ferry.EnrollmentGroup) *string { return &g.ETag },
}

// PutEnrollmentGroup creates or replaces a group if ifMatch matches.
func (o *ops) PutEnrollmentGroup(ctx context.Context, g *ferry.EnrollmentGroup, ifMatch string) error {
	if g.ServiceID == "" || g.ID == "" {
		return ferry.Errorf(ferry.EINVALID, "An enrollment group needs a service and an ID.")
	}
	return putIfMatch(ctx, o, enrollmentGroups, g, ifMatch)
}

// GetEnrollmentGroup returns a group (ID case-insensitive).
func (o *ops) GetEnrollmentGroup(ctx context.Context, serviceID, id string) (*ferry.EnrollmentGroup, error) {
	return enrollmentGroups.getKey(ctx, o.hotR(), serviceID, lower(id))
}

// ListEnrollmentGroups returns a page of a service's groups ordered by ID.
func (o *ops) ListEnrollmentGroups(ctx context.Context, f ferry.EnrollmentFilter) (ferry.Page[*ferry.EnrollmentGroup], error) {
	return enrollmentGroups.list(ctx, o.rq(), (&cond{}).eq("service_id", f.ServiceID), []string{"id_lc"}, false, f.ListOptions)
}

// DeleteEnrollmentGroup removes a group if ifMatch matches.
func (o *ops) DeleteEnrollmentGroup(ctx context.Context, serviceID, id, ifMatch string) error {
	return enrollmentGroups.del(ctx, o.d, o.wq(), []any{serviceID, lower(id)}, ifMatch)
}

var individualEnrollments = &table[ferry.IndividualEnrollment]{
	name: "individual_enrollments", what: "enrollment",
	key:  []string{"service_id", "id_lc"},
	row:  func(e *ferry.IndividualEnrollment) []any { return []any{e.ServiceID, lower(e.RegistrationID)} },
	etag: func(e *ferry.IndividualEnrollment) *string { return &e.ETag },
}

// PutIndividualEnrollment creates or replaces an enrollment if ifMatch matches.
func (o *ops) PutIndividualEnrollment(ctx context.Context, e *ferry.IndividualEnrollment, ifMatch string) error {
	if e.ServiceID == "" || e.RegistrationID == "" {
		return ferry.Errorf(ferry.EINVALID, "An enrollment needs a service and a registration ID.")
	}
	return putIfMatch(ctx, o, individualEnrollments, e, ifMatch)
}

// GetIndividualEnrollment returns an enrollment (registration ID case-insensitive).
func (o *ops) GetIndividualEnrollment(ctx context.Context, serviceID, registrationID string) (*ferry.IndividualEnrollment, error) {
	return individualEnrollments.getKey(ctx, o.hotR(), serviceID, lower(registrationID))
}

// ListIndividualEnrollments returns a page ordered by registration ID.
func (o *ops) ListIndividualEnrollments(ctx context.Context, f ferry.EnrollmentFilter) (ferry.Page[*ferry.IndividualEnrollment], error) {
	return individualEnrollments.list(ctx, o.rq(), (&cond{}).eq("service_id", f.ServiceID), []string{"id_lc"}, false, f.ListOptions)
}

// DeleteIndividualEnrollment removes an enrollment if ifMatch matches.
func (o *ops) DeleteIndividualEnrollment(ctx context.Context, serviceID, registrationID, ifMatch string) error {
	return individualEnrollments.del(ctx, o.d, o.wq(), []any{serviceID, lower(registrationID)}, ifMatch)
}

var registrations = &table[ferry.RegistrationRecord]{
	name: "registrations", what: "registration",
	key: []string{"service_id", "id_lc"}, cols: []string{"group_lc"},
	row: func(r *ferry.RegistrationRecord) []any {
		return []any{r.ServiceID, lower(r.RegistrationID), lower(r.EnrollmentGroupID)}
	},
	etag: func(r *ferry.RegistrationRecord) *string { return &r.ETag },
}

// PutRegistration creates or replaces a registration record and sets its ETag.
func (o *ops) PutRegistration(ctx context.Context, r *ferry.RegistrationRecord) error {
	if r.ServiceID == "" || r.RegistrationID == "" {
		return ferry.Errorf(ferry.EINVALID, "A registration needs a service and a registration ID.")
	}
	return registrations.upsert(ctx, o.d, o.hotW(), r)
}

// GetRegistration returns a record (case-insensitive).
func (o *ops) GetRegistration(ctx context.Context, serviceID, registrationID string) (*ferry.RegistrationRecord, error) {
	return registrations.getKey(ctx, o.hotR(), serviceID, lower(registrationID))
}

// ListRegistrations returns a page of records ordered by registration ID.
func (o *ops) ListRegistrations(ctx context.Context, f ferry.EnrollmentFilter) (ferry.Page[*ferry.RegistrationRecord], error) {
	c := (&cond{}).eq("service_id", f.ServiceID)
	if f.EnrollmentGroupID != "" {
		c.eq("group_lc", lower(f.EnrollmentGroupID))
	}
	return registrations.list(ctx, o.rq(), c, []string{"id_lc"}, false, f.ListOptions)
}

// DeleteRegistration removes a record if ifMatch matches.
func (o *ops) DeleteRegistration(ctx context.Context, serviceID, registrationID, ifMatch string) error {
	return registrations.del(ctx, o.d, o.wq(), []any{serviceID, lower(registrationID)}, ifMatch)
}

var provisioningCAs = &table[ferry.ProvisioningCA]{
	name: "provisioning_cas", what: "CA certificate",
	key:  []string{"service_id", "name"},
	row:  func(c *ferry.ProvisioningCA) []any { return []any{c.ServiceID, c.Name} },
	etag: func(c *ferry.ProvisioningCA) *string { return &c.ETag },
}

// PutProvisioningCA creates or replaces a CA if ifMatch matches.
func (o *ops) PutProvisioningCA(ctx context.Context, c *ferry.ProvisioningCA, ifMatch string) error {
	if c.ServiceID == "" || c.Name == "" {
		return ferry.Errorf(ferry.EINVALID, "A CA certificate needs a service and a name.")
	}
	return putIfMatch(ctx, o, provisioningCAs, c, ifMatch)
}

// GetProvisioningCA returns a CA by name.
func (o *ops) GetProvisioningCA(ctx context.Context, serviceID, name string) (*ferry.ProvisioningCA, error) {
	return provisioningCAs.getKey(ctx, o.rq(), serviceID, name)
}

// ListProvisioningCAs returns a service's CAs ordered by name.
func (o *ops) ListProvisioningCAs(ctx context.Context, serviceID string) ([]*ferry.ProvisioningCA, error) {
	return provisioningCAs.all(ctx, o.rq(), (&cond{}).eq("service_id", serviceID), "name")
}

// DeleteProvisioningCA removes a CA.
func (o *ops) DeleteProvisioningCA(ctx context.Context, serviceID, name string) error {
	return provisioningCAs.del(ctx, o.d, o.wq(), []any{serviceID, name}, "")
}

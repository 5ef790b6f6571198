// Package integrate is the Integrate step and the legacy shutdown of the
// Sphere-style model (sphere-surfaces.md §4.4): it turns a tenant that
// exists only on the legacy surface into a catalog under a subscription and
// resource group, proposes a role assignment for each legacy role holder,
// applies the reviewed proposal in one transaction, pauses, enables and
// blocks legacy access, removes legacy roles, and reports who still calls
// the legacy surface (Usage) and whose legacy role grants more than its
// role assignments (Sidestep).
//
// It speaks no HTTP and checks no permissions: the surfaces authorize each
// call first (httpapi/migration serves it on the integrated surface).
package integrate

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi/legacy"
	"github.com/ferry-iot/ferry/rbac"
	"github.com/ferry-iot/ferry/sphere"
)

// Config configures a Service.
type Config struct {
	Store      ferry.Store      // required
	Sphere     *sphere.Service  // required
	Authorizer *rbac.Authorizer // required: reloaded after Apply, read by Sidestep
	Logger     *slog.Logger     // nil discards
	Now        func() time.Time // nil is time.Now
}

// Service runs the Integrate step, the legacy access switches and the
// migration reports. Safe for concurrent use.
type Service struct {
	store ferry.Store
	svc   *sphere.Service
	authz *rbac.Authorizer
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, svc: cfg.Sphere, authz: cfg.Authorizer, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// catalogNamePattern is the swagger's pattern of a catalog name.
var catalogNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,50}$`)

// Name patterns of the integrated surface, used to warn about legacy names
// that the ARM paths cannot address.
var (
	productNamePattern = regexp.MustCompile(`^[\w][\w\s]{1,48}[\w]$|^\.default$|^\.unassigned$`)
	groupNamePattern   = regexp.MustCompile(`^[A-Za-z0-9]{1,2}$|^[A-Za-z0-9][A-Za-z0-9\s]{1,48}[A-Za-z0-9]$|^\.default$|^\.unassigned$`)
)

// ContributorWarning is the note every proposal from a legacy Contributor
// carries: the integrated role is wider on deletes.
const ContributorWarning = "Azure Sphere Contributor can delete products, device groups, images and deployments, which a legacy Contributor cannot; choose a custom role without the delete actions to keep the old limit."

// Proposal is what the Integrate step would do to a legacy tenant: the ARM
// location of the future catalog, how many resources get an ARM resource
// ID, and one proposed role assignment per legacy role holder.
type Proposal struct {
	TenantID       string
	SubscriptionID string
	ResourceGroup  string
	CatalogName    string
	// CatalogID is the catalog's future ARM resource ID; every resource of
	// the tenant gets an ID under it.
	CatalogID string
	// Resources counts the tenant's resources by ARM type.
	Resources map[string]int
	// Assignments has one entry per legacy role holder, by principal ID.
	Assignments []ProposedAssignment
	// Warnings are things the reviewer should know before applying.
	Warnings []string
}

// ProposedAssignment is the role assignment proposed for one legacy role
// holder.
type ProposedAssignment struct {
	PrincipalID   string
	PrincipalName string // login name, when the principal is known
	LegacyRoles   []ferry.LegacyRole
	// Assignment is the proposed assignment at the catalog scope.
	Assignment ferry.RoleAssignment
	RoleName   string // the proposed role's name
	Warning    string // set for legacy Contributors (ContributorWarning)
}

// Verdict is a reviewer's answer to one proposed assignment.
type Verdict string

// Verdicts.
const (
	Accept Verdict = "Accept" // create the proposed assignment
	Change Verdict = "Change" // create an assignment of another role instead
	Reject Verdict = "Reject" // create nothing for this principal
)

// Decision answers the proposal for one principal.
type Decision struct {
	PrincipalID      string
	Verdict          Verdict
	RoleDefinitionID string // the role for Change (a UUID)
}

// Result is what Apply did.
type Result struct {
	Catalog     *ferry.Catalog
	Assignments []ferry.RoleAssignment // created
	Rejected    []string               // principal IDs given nothing
}

// Propose returns the proposal for integrating the legacy tenant tenantID
// as catalogName in the given subscription and resource group. Returns
// ENOTFOUND for an unknown tenant or resource group, EINVALID for a bad
// catalog name, and ECONFLICT if the tenant is already integrated or the
// name is taken in the resource group.
func (s *Service) Propose(ctx context.Context, tenantID, subscriptionID, resourceGroup, catalogName string) (*Proposal, error) {
	p, err := s.propose(ctx, s.store, tenantID, subscriptionID, resourceGroup, catalogName)
	if err != nil {
		return nil, fmt.Errorf("propose integration: %w", err)
	}
	return p, nil
}

func (s *Service) propose(ctx context.Context, tx ferry.Tx, tenantID, subscriptionID, resourceGroup, catalogName string) (*Proposal, error) {
	if !catalogNamePattern.MatchString(catalogName) {
		return nil, ferry.Errorf(ferry.EINVALID, "The catalog name '%s' is not valid: it must match %s.", truncate(catalogName, 60), catalogNamePattern)
	}
	if !ferry.IsUUID(tenantID) {
		return nil, ferry.Errorf(ferry.EINVALID, "The tenant ID '%s' is not a GUID.", truncate(tenantID, 40))
	}
	c, err := tx.GetCatalog(ctx, strings.ToLower(tenantID))
	if err != nil {
		return nil, err
	}
	if c.Integrated() {
		return nil, ferry.Errorf(ferry.ECONFLICT, "The tenant '%s' is already integrated as the catalog '%s'.", c.TenantID, c.ResourceID())
	}
	rg, err := tx.GetResourceGroup(ctx, subscriptionID, resourceGroup)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, ferry.Errorf(ferry.ENOTFOUND, "The resource group '%s' of subscription '%s' was not found.", truncate(resourceGroup, 90), truncate(subscriptionID, 40))
	}
	if err != nil {
		return nil, err
	}
	if _, err := tx.GetCatalogByName(ctx, rg.SubscriptionID, rg.Name, catalogName); err == nil {
		return nil, ferry.Errorf(ferry.ECONFLICT, "A catalog named '%s' already exists in the resource group '%s'.", catalogName, rg.Name)
	} else if !ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, err
	}
	future := *c
	future.SubscriptionID, future.ResourceGroup, future.Name = rg.SubscriptionID, rg.Name, catalogName
	scope := future.ResourceID().String()
	p := &Proposal{
		TenantID: c.TenantID, SubscriptionID: rg.SubscriptionID, ResourceGroup: rg.Name,
		CatalogName: catalogName, CatalogID: scope, Resources: map[string]int{},
	}
	if err := s.countResources(ctx, tx, c, p); err != nil {
		return nil, err
	}
	roles, err := tx.ListLegacyRoles(ctx, c.TenantID, "")
	if err != nil {
		return nil, err
	}
	held := map[string][]ferry.LegacyRole{}
	for _, r := range roles {
		k := strings.ToLower(r.PrincipalID)
		held[k] = append(held[k], r.Role)
	}
	createdBy := ""
	if caller := ferry.CallerFromContext(ctx); caller != nil {
		createdBy = caller.ID()
	}
	for _, a := range rbac.IntegrateAssignments(roles, scope, createdBy, s.now().UTC()) {
		pa := ProposedAssignment{PrincipalID: a.PrincipalID, Assignment: a, LegacyRoles: held[strings.ToLower(a.PrincipalID)]}
		slices.Sort(pa.LegacyRoles)
		pa.LegacyRoles = slices.Compact(pa.LegacyRoles)
		if d, err := tx.GetRoleDefinition(ctx, a.RoleDefinitionID); err == nil {
			pa.RoleName = d.Name
		} else if ferry.IsCode(err, ferry.ENOTFOUND) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("The role definition %s is not installed; accepting the proposal for %s will fail.", a.RoleDefinitionID, a.PrincipalID))
		} else {
			return nil, err
		}
		if pr, err := tx.GetPrincipal(ctx, a.PrincipalID); err == nil {
			pa.PrincipalName = pr.Name
			pa.Assignment.PrincipalType = pr.Type
		}
		if a.RoleDefinitionID == ferry.RoleAzureSphereContributor {
			pa.Warning = ContributorWarning
		}
		p.Assignments = append(p.Assignments, pa)
	}
	if len(p.Assignments) == 0 {
		p.Warnings = append(p.Warnings, "No principal holds a legacy role in this tenant: nobody will have access to the catalog until a role is assigned.")
	}
	return p, nil
}

// countResources counts what gets an ARM ID, and warns about names the
// ARM paths cannot address.
func (s *Service) countResources(ctx context.Context, tx ferry.Tx, c *ferry.Catalog, p *Proposal) error {
	prods, err := all(func(o ferry.ListOptions) (ferry.Page[*ferry.Product], error) {
		return tx.ListProducts(ctx, ferry.ProductFilter{CatalogID: c.TenantID, ListOptions: o})
	})
	if err != nil {
		return err
	}
	for _, x := range prods {
		if !productNamePattern.MatchString(x.Name) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("The product '%s' has a name the integrated API cannot address; rename it first.", truncate(x.Name, 60)))
		}
	}
	groups, err := all(func(o ferry.ListOptions) (ferry.Page[*ferry.DeviceGroup], error) {
		return tx.ListDeviceGroups(ctx, ferry.DeviceGroupFilter{CatalogID: c.TenantID, ListOptions: o})
	})
	if err != nil {
		return err
	}
	for _, x := range groups {
		if !groupNamePattern.MatchString(x.Name) {
			p.Warnings = append(p.Warnings, fmt.Sprintf("The device group '%s' has a name the integrated API cannot address; rename it first.", truncate(x.Name, 60)))
		}
	}
	devices, err := tx.CountDevices(ctx, ferry.DeviceFilter{CatalogID: c.TenantID})
	if err != nil {
		return err
	}
	images, err := all(func(o ferry.ListOptions) (ferry.Page[*ferry.Image], error) {
		return tx.ListImages(ctx, ferry.ImageFilter{CatalogID: c.TenantID, ListOptions: o})
	})
	if err != nil {
		return err
	}
	deps, err := all(func(o ferry.ListOptions) (ferry.Page[*ferry.Deployment], error) {
		return tx.ListDeployments(ctx, ferry.DeploymentFilter{CatalogID: c.TenantID, ListOptions: o})
	})
	if err != nil {
		return err
	}
	certs, err := tx.ListCertificates(ctx, c.TenantID)
	if err != nil {
		return err
	}
	p.Resources[ferry.TypeCatalog] = 1
	p.Resources[ferry.TypeProduct] = len(prods)
	p.Resources[ferry.TypeDeviceGroup] = len(groups)
	p.Resources[ferry.TypeDevice] = devices
	p.Resources[ferry.TypeImage] = len(images)
	p.Resources[ferry.TypeDeployment] = len(deps)
	p.Resources[ferry.TypeCertificate] = len(certs)
	return nil
}

// Apply integrates the tenant of proposal p as reviewed by decisions, one
// per proposed assignment, all in one transaction: the catalog gets its
// ARM location (and with it every resource its ARM resource ID), the
// accepted and changed assignments are created at the catalog scope, and
// the authorizer is reloaded once it is committed. If anything fails,
// nothing is kept.
//
// Returns EINVALID when a proposed principal has no decision, a decision
// names a principal the proposal does not hold, or a Change names no
// existing role; ECONFLICT when the tenant was integrated meanwhile, its
// legacy role holders changed since the proposal (propose again), the
// catalog name was taken or an assignment already exists; ENOTFOUND when
// the tenant or the resource group is gone.
func (s *Service) Apply(ctx context.Context, p *Proposal, decisions []Decision) (*Result, error) {
	res, err := s.apply(ctx, p, decisions)
	if err != nil {
		return nil, fmt.Errorf("integrate tenant: %w", err)
	}
	if s.authz != nil {
		if err := s.authz.Reload(ctx); err != nil {
			return res, fmt.Errorf("integrated, but the authorizer did not reload: %w", err)
		}
	}
	s.log.InfoContext(ctx, "tenant integrated", "tenant_id", p.TenantID, "catalog", p.CatalogID,
		"assignments", len(res.Assignments), "rejected", len(res.Rejected))
	return res, nil
}

func (s *Service) apply(ctx context.Context, p *Proposal, decisions []Decision) (*Result, error) {
	if p == nil {
		return nil, ferry.Errorf(ferry.EINVALID, "The proposal is required.")
	}
	byPrincipal := map[string]Decision{}
	for _, d := range decisions {
		k := strings.ToLower(d.PrincipalID)
		if _, dup := byPrincipal[k]; dup {
			return nil, ferry.Errorf(ferry.EINVALID, "The principal '%s' has more than one decision.", truncate(d.PrincipalID, 40))
		}
		switch d.Verdict {
		case Accept, Reject:
		case Change:
			if !ferry.IsUUID(d.RoleDefinitionID) {
				return nil, ferry.Errorf(ferry.EINVALID, "The decision to change the role of '%s' needs a role definition ID.", truncate(d.PrincipalID, 40))
			}
		default:
			return nil, ferry.Errorf(ferry.EINVALID, "The decision '%s' is not valid: use Accept, Change or Reject.", truncate(string(d.Verdict), 20))
		}
		byPrincipal[k] = d
	}
	for _, a := range p.Assignments {
		if _, ok := byPrincipal[strings.ToLower(a.PrincipalID)]; !ok {
			return nil, ferry.Errorf(ferry.EINVALID, "The proposed assignment for '%s' has no decision: accept, change or reject each one.", a.PrincipalID)
		}
		delete(byPrincipal, strings.ToLower(a.PrincipalID))
	}
	for _, d := range byPrincipal {
		return nil, ferry.Errorf(ferry.EINVALID, "The principal '%s' is not in the proposal.", truncate(d.PrincipalID, 40))
	}
	for _, d := range decisions {
		byPrincipal[strings.ToLower(d.PrincipalID)] = d
	}

	res := &Result{}
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		// Propose again inside the transaction: the tenant, resource group
		// and legacy role holders must still be what the reviewer saw.
		cur, err := s.propose(ctx, tx, p.TenantID, p.SubscriptionID, p.ResourceGroup, p.CatalogName)
		if err != nil {
			return err
		}
		if !sameHolders(cur, p) {
			return ferry.Errorf(ferry.ECONFLICT, "The legacy role holders of the tenant changed since the proposal was made; propose again.")
		}
		c, err := tx.GetCatalog(ctx, cur.TenantID)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		c.SubscriptionID, c.ResourceGroup, c.Name = cur.SubscriptionID, cur.ResourceGroup, cur.CatalogName
		c.IntegratedAt = now
		var pr *ferry.Principal
		if caller := ferry.CallerFromContext(ctx); caller != nil {
			pr = caller.Principal
		}
		c.SystemData.Touch(pr, now)
		if err := tx.UpdateCatalog(ctx, c, c.ETag); err != nil {
			return err
		}
		for _, pa := range cur.Assignments {
			d := byPrincipal[strings.ToLower(pa.PrincipalID)]
			a := pa.Assignment
			switch d.Verdict {
			case Reject:
				res.Rejected = append(res.Rejected, pa.PrincipalID)
				continue
			case Change:
				def, err := tx.GetRoleDefinition(ctx, strings.ToLower(d.RoleDefinitionID))
				if ferry.IsCode(err, ferry.ENOTFOUND) {
					return ferry.Errorf(ferry.EINVALID, "The role definition '%s' chosen for '%s' does not exist.", d.RoleDefinitionID, pa.PrincipalID)
				} else if err != nil {
					return err
				}
				a.RoleDefinitionID = def.ID
				a.ID = nameUUID(strings.ToLower(a.Scope) + "\n" + strings.ToLower(a.PrincipalID) + "\n" + def.ID)
				a.Description = fmt.Sprintf("Integrated from the legacy %s role, changed on review to %s.", strongest(pa.LegacyRoles), def.Name)
			}
			a.CreatedAt = now
			if err := tx.CreateRoleAssignment(ctx, &a); err != nil {
				return fmt.Errorf("assign a role to %s: %w", a.PrincipalID, err)
			}
			res.Assignments = append(res.Assignments, a)
		}
		res.Catalog = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// sameHolders reports whether two proposals propose for the same principals
// the same roles.
func sameHolders(a, b *Proposal) bool {
	if len(a.Assignments) != len(b.Assignments) {
		return false
	}
	for i := range a.Assignments {
		x, y := a.Assignments[i], b.Assignments[i]
		if !strings.EqualFold(x.PrincipalID, y.PrincipalID) || x.Assignment.RoleDefinitionID != y.Assignment.RoleDefinitionID {
			return false
		}
	}
	return true
}

// strongest returns the strongest of a principal's legacy roles.
func strongest(rs []ferry.LegacyRole) ferry.LegacyRole {
	for _, r := range []ferry.LegacyRole{ferry.LegacyAdministrator, ferry.LegacyContributor, ferry.LegacyReader} {
		if slices.Contains(rs, r) {
			return r
		}
	}
	return ""
}

// Pause pauses legacy access to a tenant: its legacy users get 403 with
// legacy code 1 until Enable. The legacy role assignments stay. Returns
// ENOTFOUND, or ECONFLICT when legacy access is blocked.
func (s *Service) Pause(ctx context.Context, tenantID string) error {
	return s.setAccess(ctx, "pause legacy access", tenantID, ferry.LegacyPaused)
}

// Enable enables paused legacy access again. Returns ENOTFOUND, or
// ECONFLICT when legacy access is blocked (Block is permanent).
func (s *Service) Enable(ctx context.Context, tenantID string) error {
	return s.setAccess(ctx, "enable legacy access", tenantID, ferry.LegacyEnabled)
}

// Block blocks legacy access to a tenant for good: its legacy calls get
// 410 Gone from then on. Returns ENOTFOUND.
func (s *Service) Block(ctx context.Context, tenantID string) error {
	return s.setAccess(ctx, "block legacy access", tenantID, ferry.LegacyBlocked)
}

func (s *Service) setAccess(ctx context.Context, op, tenantID string, state ferry.LegacyAccess) error {
	if err := legacy.SetAccess(ctx, s.svc, strings.ToLower(tenantID), state); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.log.InfoContext(ctx, "legacy access changed", "tenant_id", tenantID, "state", string(state))
	return nil
}

// RemoveLegacyRoles takes every legacy role of a principal in a tenant
// away, in one transaction, and returns the roles removed. While legacy
// access is not blocked the tenant keeps at least one Administrator:
// removing the last one returns ECONFLICT. Returns ENOTFOUND when the
// tenant is unknown or the principal holds no legacy role in it.
func (s *Service) RemoveLegacyRoles(ctx context.Context, tenantID, principalID string) ([]ferry.LegacyRole, error) {
	tenantID = strings.ToLower(tenantID)
	var removed []ferry.LegacyRole
	err := s.store.WithTx(ctx, func(tx ferry.Tx) error {
		c, err := tx.GetCatalog(ctx, tenantID)
		if err != nil {
			return err
		}
		as, err := tx.ListLegacyRoles(ctx, c.TenantID, "")
		if err != nil {
			return err
		}
		otherAdmins := 0
		for _, a := range as {
			if strings.EqualFold(a.PrincipalID, principalID) {
				removed = append(removed, a.Role)
			} else if a.Role == ferry.LegacyAdministrator {
				otherAdmins++
			}
		}
		if len(removed) == 0 {
			return ferry.Errorf(ferry.ENOTFOUND, "The principal '%s' holds no legacy role in the tenant.", truncate(principalID, 40))
		}
		if slices.Contains(removed, ferry.LegacyAdministrator) && otherAdmins == 0 && c.LegacyAccess != ferry.LegacyBlocked {
			return ferry.Errorf(ferry.ECONFLICT, "The tenant must keep at least one legacy Administrator while legacy access is not blocked.")
		}
		for _, r := range removed {
			if err := tx.RemoveLegacyRole(ctx, c.TenantID, principalID, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("remove legacy roles: %w", err)
	}
	slices.Sort(removed)
	return slices.Compact(removed), nil
}

// all collects every item of a keyset-paged list.
func all[T any](list func(ferry.ListOptions) (ferry.Page[T], error)) ([]T, error) {
	var out []T
	opt := ferry.ListOptions{Limit: ferry.MaxPageSize}
	for {
		p, err := list(opt)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Items...)
		if p.Next == "" {
			return out, nil
		}
		opt.After = p.Next
	}
}

// nameUUID returns a name-based UUID (RFC 9562 version 8, from SHA-256), so
// that a retried Apply derives the same assignment IDs.
func nameUUID(name string) string {
	h := sha256.Sum256([]byte(name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

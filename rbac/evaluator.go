package rbac

import (
	"sort"
	"strconv"
	"strings"

	"github.com/ferry-iot/ferry"
)

// compiledPermission is a ferry.Permission with its patterns compiled.
type compiledPermission struct {
	actions, notActions         []pattern
	dataActions, notDataActions []pattern
}

func (p *compiledPermission) permits(action string, data bool) bool {
	allow, deny := p.actions, p.notActions
	if data {
		allow, deny = p.dataActions, p.notDataActions
	}
	ok := false
	for i := range allow {
		if allow[i].match(action) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for i := range deny {
		if deny[i].match(action) {
			return false
		}
	}
	return true
}

func compilePatterns(ps []string) []pattern {
	out := make([]pattern, 0, len(ps))
	for _, p := range ps {
		out = append(out, compilePattern(p))
	}
	return out
}

// role is a compiled role definition.
type role struct {
	def   *ferry.RoleDefinition
	perms []compiledPermission
	// known caches the answer for every action of the operation table,
	// keyed by the action as the table spells it, so that the usual check
	// is one map lookup; other spellings take the pattern path.
	known map[string]answer
}

// answer is a cached permits result for an action of the given kind.
type answer struct{ ok, data bool }

// permits reports whether some permission block of the role grants the
// action. NotActions subtract only from the Actions of their own block, as
// in Azure: another block (or another role) may still grant the action.
func (r *role) permits(action string, data bool) bool {
	if a, hit := r.known[action]; hit && a.data == data {
		return a.ok
	}
	return r.match(action, data)
}

func (r *role) match(action string, data bool) bool {
	for i := range r.perms {
		if r.perms[i].permits(action, data) {
			return true
		}
	}
	return false
}

func compileRole(d *ferry.RoleDefinition) *role {
	r := &role{def: d}
	for _, p := range d.Permissions {
		r.perms = append(r.perms, compiledPermission{
			actions:        compilePatterns(p.Actions),
			notActions:     compilePatterns(p.NotActions),
			dataActions:    compilePatterns(p.DataActions),
			notDataActions: compilePatterns(p.NotDataActions),
		})
	}
	r.known = make(map[string]answer, len(operations))
	for i := range operations {
		o := &operations[i]
		r.known[o.Action] = answer{ok: r.match(o.Action, o.DataAction), data: o.DataAction}
	}
	return r
}

// grant is an assignment joined to its compiled role.
type grant struct {
	a     *ferry.RoleAssignment
	r     *role
	scope string // the assignment scope without a trailing slash
	lower string // scope with ASCII letters lower-cased
	ascii bool   // scope is all ASCII, so lower is a full case fold
}

// covers reports whether the grant's scope contains resourceID, as
// ferry.ScopeContains does. It compares from the end: scopes share long
// prefixes ("/subscriptions/s/resourceGroups/"), so a grant for another
// resource is rejected after a few bytes.
func (g *grant) covers(resourceID string) bool {
	if !g.ascii {
		return ferry.ScopeContains(g.scope, resourceID)
	}
	n := len(g.lower)
	if n == 0 {
		return true
	}
	if len(resourceID) < n || (len(resourceID) > n && resourceID[n] != '/') {
		return false
	}
	for i := n - 1; i >= 0; i-- {
		if c := resourceID[i]; c != g.lower[i] && lowerASCII(c) != g.lower[i] {
			return false
		}
	}
	return true
}

// Evaluator answers authorization questions over a fixed set of role
// definitions and assignments. It is immutable once built and safe for
// concurrent use; build a new one when the definitions or assignments change.
//
// Ferry has no deny assignments, so an action is allowed when any assignment
// of the principal at or above the scope has a role whose permissions grant
// it. An assignment whose scope lies outside its role's assignable scopes,
// or whose role does not exist, grants nothing.
type Evaluator struct {
	roles       map[string]*role   // by lower-case role ID
	byPrincipal map[string][]grant // by lower-case principal ID
}

// NewEvaluator compiles role definitions and assignments into an Evaluator.
// The slices are not retained; the definitions and assignments they point
// to must not change afterwards.
func NewEvaluator(defs []ferry.RoleDefinition, assignments []ferry.RoleAssignment) *Evaluator {
	e := &Evaluator{roles: make(map[string]*role, len(defs)), byPrincipal: map[string][]grant{}}
	for i := range defs {
		d := defs[i]
		e.roles[strings.ToLower(d.ID)] = compileRole(&d)
	}
	for i := range assignments {
		a := assignments[i]
		r := e.roles[strings.ToLower(a.RoleDefinitionID)]
		if r == nil || !Assignable(r.def, a.Scope) {
			continue
		}
		k := strings.ToLower(a.PrincipalID)
		scope := strings.TrimRight(a.Scope, "/")
		e.byPrincipal[k] = append(e.byPrincipal[k], grant{a: &a, r: r, scope: scope, lower: lowerASCIIString(scope), ascii: isASCII(scope)})
	}
	for k, gs := range e.byPrincipal {
		// Broadest scope first: a subscription-wide grant answers before the
		// catalog-level ones, and Explain names the broadest grant.
		sort.SliceStable(gs, func(i, j int) bool { return len(gs[i].scope) < len(gs[j].scope) })
		e.byPrincipal[k] = gs
	}
	return e
}

// grants returns the principal's grants; principal IDs compare
// case-insensitively (they are UUIDs).
func (e *Evaluator) grants(principalID string) []grant {
	if gs, ok := e.byPrincipal[principalID]; ok {
		return gs
	}
	return e.byPrincipal[strings.ToLower(principalID)]
}

func (e *Evaluator) find(principalID, action, scope string, data bool) *grant {
	if action == "" {
		return nil
	}
	gs := e.grants(principalID)
	for i := range gs {
		g := &gs[i]
		if g.covers(scope) && g.r.permits(action, data) {
			return g
		}
	}
	return nil
}

// Allowed reports whether the principal may perform the action (a control
// plane ARM action such as "Microsoft.AzureSphere/catalogs/read") on the
// resource or scope.
func (e *Evaluator) Allowed(principalID, action, scope string) bool {
	return e.find(principalID, action, scope, false) != nil
}

// DataAllowed reports whether the principal may perform a data action (such
// as "Microsoft.Devices/IotHubs/twins/read"), which only DataActions grant.
func (e *Evaluator) DataAllowed(principalID, dataAction, scope string) bool {
	return e.find(principalID, dataAction, scope, true) != nil
}

// Decision explains an authorization answer.
type Decision struct {
	Allowed bool
	// Assignment and Role are the grant that allowed the action: the
	// broadest-scoped one when several do. Nil when denied.
	Assignment *ferry.RoleAssignment
	Role       *ferry.RoleDefinition
	// Reason is a sentence for audit records and test failures.
	Reason string
}

// Explain answers Allowed and says which assignment granted the action, for
// audit records and tests. data selects DataActions instead of Actions.
func (e *Evaluator) Explain(principalID, action, scope string, data bool) Decision {
	g := e.find(principalID, action, scope, data)
	if g == nil {
		n := 0
		for _, x := range e.grants(principalID) {
			if x.covers(scope) {
				n++
			}
		}
		return Decision{Reason: "no role assignment of principal " + principalID + " at or above " + scope +
			" grants " + action + " (" + strconv.Itoa(n) + " assignments apply to the scope)"}
	}
	return Decision{
		Allowed:    true,
		Assignment: g.a,
		Role:       g.r.def,
		Reason:     "role " + g.r.def.Name + " assigned at " + g.a.Scope + " (assignment " + g.a.ID + ") grants " + action,
	}
}

// EffectivePermissions returns the permission blocks of every role the
// principal holds at or above scope, in assignment order, broadest scope
// first. Blocks of a role assigned twice appear once.
func (e *Evaluator) EffectivePermissions(principalID, scope string) []ferry.Permission {
	var out []ferry.Permission
	seen := map[*role]bool{}
	for _, g := range e.grants(principalID) {
		if seen[g.r] || !g.covers(scope) {
			continue
		}
		seen[g.r] = true
		out = append(out, g.r.def.Permissions...)
	}
	return out
}

// ListPermitted returns the scopes, in the order given, on which the
// principal may perform the action: what a list call keeps.
func (e *Evaluator) ListPermitted(principalID, action string, scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if e.Allowed(principalID, action, s) {
			out = append(out, s)
		}
	}
	return out
}

// RoleDefinition returns a compiled role's definition by ID, or nil.
func (e *Evaluator) RoleDefinition(id string) *ferry.RoleDefinition {
	if r := e.roles[strings.ToLower(id)]; r != nil {
		return r.def
	}
	return nil
}

func lowerASCIIString(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

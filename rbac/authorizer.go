package rbac

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/ferry-iot/ferry"
)

// Authorizer is the integrated surface's ferry.Authorizer: Azure RBAC over
// the role definitions and assignments of a store. It answers from an
// immutable Evaluator held in an atomic pointer; Reload builds a new one
// from the store and swaps it in, so calls never wait on the database and
// never see half an update. Call Reload after every change to definitions
// or assignments. Safe for concurrent use.
type Authorizer struct {
	store ferry.RBACStore
	eval  atomic.Pointer[Evaluator]
}

var _ ferry.Authorizer = (*Authorizer)(nil)

// New returns an Authorizer over store. It denies everything until the
// first Reload.
func New(store ferry.RBACStore) *Authorizer {
	a := &Authorizer{store: store}
	a.eval.Store(NewEvaluator(nil, nil))
	return a
}

// Reload reads every role definition and assignment from the store and
// makes them the ones Authorize uses. On error the previous set stays.
func (a *Authorizer) Reload(ctx context.Context) error {
	var defs []ferry.RoleDefinition
	f := ferry.RoleDefinitionFilter{ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}}
	for {
		p, err := a.store.ListRoleDefinitions(ctx, f)
		if err != nil {
			return fmt.Errorf("reload role definitions: %w", err)
		}
		for _, d := range p.Items {
			defs = append(defs, *d)
		}
		if p.Next == "" {
			break
		}
		f.After = p.Next
	}
	var asg []ferry.RoleAssignment
	af := ferry.RoleAssignmentFilter{ListOptions: ferry.ListOptions{Limit: ferry.MaxPageSize}}
	for {
		p, err := a.store.ListRoleAssignments(ctx, af)
		if err != nil {
			return fmt.Errorf("reload role assignments: %w", err)
		}
		for _, x := range p.Items {
			asg = append(asg, *x)
		}
		if p.Next == "" {
			break
		}
		af.After = p.Next
	}
	a.eval.Store(NewEvaluator(defs, asg))
	return nil
}

// Evaluator returns the evaluator in use, for explanations and list
// filtering. It does not change; a later Reload installs a new one.
func (a *Authorizer) Evaluator() *Evaluator { return a.eval.Load() }

// Authorize implements ferry.Authorizer. It returns EUNAUTHORIZED without a
// caller, EFORBIDDEN for callers authenticated by a shared-access policy
// (their rights are checked by the hub and provisioning services, not by
// RBAC), for disabled principals, and for actions no assignment grants.
// Known data actions (see IsDataAction) are checked against DataActions.
func (a *Authorizer) Authorize(ctx context.Context, c *ferry.Caller, action, resourceID string) error {
	if c == nil || (c.Principal == nil && c.Policy == "") {
		return ferry.Errorf(ferry.EUNAUTHORIZED, "Authentication is required.")
	}
	if c.Principal == nil || c.Principal.Disabled {
		return forbidden(c, action, resourceID)
	}
	e := a.eval.Load()
	if IsDataAction(action) {
		if e.DataAllowed(c.Principal.ID, action, resourceID) {
			return nil
		}
	} else if e.Allowed(c.Principal.ID, action, resourceID) {
		return nil
	}
	return forbidden(c, action, resourceID)
}

// forbidden returns ARM's AuthorizationFailed message.
func forbidden(c *ferry.Caller, action, scope string) error {
	return ferry.Errorf(ferry.EFORBIDDEN,
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		c.Name(), c.ID(), action, scope)
}

// IsDataAction reports whether action is a data action of the operation
// table (for example the IoT Hub data-plane actions), which roles grant
// through DataActions rather than Actions.
func IsDataAction(action string) bool {
	if _, ok := dataActions[action]; ok {
		return true
	}
	_, ok := dataActions[strings.ToLower(action)]
	return ok
}

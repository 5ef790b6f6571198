package rbac

import (
	"context"
	"fmt"

	"github.com/ferry-iot/ferry"
)

// Store returns the Authorizer's store wrapped so that every successful
// write of a role definition or assignment reloads the Authorizer before it
// returns: a handler that writes through it cannot forget the Reload, and
// the caller's next request sees the change. When the write succeeds but
// the reload fails, the write stays and the reload error is returned.
// Writes made by other nodes of a deployment still need a Reload on each
// node.
func (a *Authorizer) Store() ferry.RBACStore { return reloadingStore{a.store, a} }

type reloadingStore struct {
	ferry.RBACStore
	a *Authorizer
}

func (s reloadingStore) reload(ctx context.Context, err error) error {
	if err != nil {
		return err
	}
	if err := s.a.Reload(ctx); err != nil {
		return fmt.Errorf("written, but the authorizer did not reload: %w", err)
	}
	return nil
}

func (s reloadingStore) PutRoleDefinition(ctx context.Context, d *ferry.RoleDefinition) error {
	return s.reload(ctx, s.RBACStore.PutRoleDefinition(ctx, d))
}

func (s reloadingStore) DeleteRoleDefinition(ctx context.Context, id string) error {
	return s.reload(ctx, s.RBACStore.DeleteRoleDefinition(ctx, id))
}

func (s reloadingStore) CreateRoleAssignment(ctx context.Context, x *ferry.RoleAssignment) error {
	return s.reload(ctx, s.RBACStore.CreateRoleAssignment(ctx, x))
}

func (s reloadingStore) DeleteRoleAssignment(ctx context.Context, id string) error {
	return s.reload(ctx, s.RBACStore.DeleteRoleAssignment(ctx, id))
}

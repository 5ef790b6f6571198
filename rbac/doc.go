// Package rbac authorizes management calls on both of Ferry's surfaces.
//
// On the integrated surface it is an Azure RBAC evaluator: role definitions
// with Actions, NotActions, DataActions and NotDataActions ("*" wildcards,
// case-insensitive), assignable scopes, and role assignments at ARM scopes
// that cover everything below them by whole segments. Authorizer keeps a
// compiled, immutable Evaluator behind an atomic pointer and rebuilds it
// from the store on Reload, so a check costs a map lookup and a few string
// comparisons and never touches the database.
//
// On the legacy surface, LegacyAuthorizer applies the tenant-wide
// Administrator, Contributor and Reader roles, expressed over the same ARM
// actions (LegacyRolePermission).
//
// The operation table (Operations, OperationByID) names the action every
// API operation needs on either surface, and BuiltInRoles and SeedBuiltIns
// provide Azure's well-known role definitions.
package rbac

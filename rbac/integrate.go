package rbac

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// IntegratedRole returns the built-in role the Integrate step gives, at the
// new catalog's scope, to a holder of a legacy role. The reference finds no
// published mapping (sphere-surfaces.md §4.4); this is its suggested one:
// Administrator → Owner (it manages users, as an Administrator does),
// Contributor → Azure Sphere Contributor, Reader → Azure Sphere Reader.
// Note that Azure Sphere Contributor may delete, which a legacy
// Contributor may not. Returns false for an unknown role.
func IntegratedRole(r ferry.LegacyRole) (string, bool) {
	switch r {
	case ferry.LegacyAdministrator:
		return ferry.RoleOwner, true
	case ferry.LegacyContributor:
		return ferry.RoleAzureSphereContributor, true
	case ferry.LegacyReader:
		return ferry.RoleAzureSphereReader, true
	}
	return "", false
}

// legacyRank orders legacy roles from weakest to strongest.
var legacyRank = map[ferry.LegacyRole]int{
	ferry.LegacyReader: 1, ferry.LegacyContributor: 2, ferry.LegacyAdministrator: 3,
}

// IntegrateAssignments returns the role assignments the Integrate step
// creates at catalogScope for a tenant's legacy roles: one per principal,
// for its strongest legacy role (an Administrator who is also a Reader gets
// Owner only). Assignment IDs are derived from the scope, principal and
// role, so a resumed Integrate proposes the same IDs and the store answers
// ECONFLICT for those already created. Principals are typed User, since
// legacy roles do not record the type. The result is ordered by principal.
func IntegrateAssignments(legacy []*ferry.LegacyRoleAssignment, catalogScope, createdBy string, now time.Time) []ferry.RoleAssignment {
	best := map[string]ferry.LegacyRole{}
	orig := map[string]string{}
	var order []string
	for _, l := range legacy {
		if _, ok := IntegratedRole(l.Role); !ok {
			continue
		}
		k := strings.ToLower(l.PrincipalID)
		cur, seen := best[k]
		if !seen {
			order = append(order, k)
			orig[k] = l.PrincipalID
		}
		if !seen || legacyRank[l.Role] > legacyRank[cur] {
			best[k] = l.Role
		}
	}
	slices.Sort(order)
	out := make([]ferry.RoleAssignment, 0, len(order))
	for _, p := range order {
		roleID, _ := IntegratedRole(best[p])
		out = append(out, ferry.RoleAssignment{
			ID:               nameUUID(strings.ToLower(catalogScope) + "\n" + p + "\n" + roleID),
			Scope:            catalogScope,
			RoleDefinitionID: roleID,
			PrincipalID:      orig[p],
			PrincipalType:    ferry.PrincipalUser,
			Description:      fmt.Sprintf("Integrated from the legacy %s role.", best[p]),
			CreatedAt:        now,
			CreatedBy:        createdBy,
		})
	}
	return out
}

// nameUUID returns a name-based UUID (RFC 9562 version 8, from SHA-256).
func nameUUID(name string) string {
	h := sha256.Sum256([]byte(name))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

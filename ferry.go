// Package ferry is the domain of Ferry, a self-hosted IoT fleet control plane:
// the types, service interfaces and error codes that every other package
// shares. It imports only the standard library (a test checks this).
//
// The domain follows Azure's resource shapes because users, scripts and SDKs
// already know them: catalogs, products, device groups, devices, images and
// deployments on the management plane; hubs, device identities, provisioning
// services and enrollments on the device plane; principals, role definitions
// and role assignments for access; migrations that move devices between hubs.
// Adapters (store, mqttgw, httpapi/..., and so on) implement or consume the
// interfaces declared here; cmd/ferry wires them together.
package ferry

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Version is the Ferry release, set at build time with -ldflags.
var Version = "dev"

// DefaultPageSize and MaxPageSize bound keyset-paged lists.
const (
	DefaultPageSize = 100
	MaxPageSize     = 10000
)

// ListOptions selects one page of a keyset-paged list. After is the opaque
// cursor returned as Page.Next by the previous call ("" for the first page).
type ListOptions struct {
	After string
	Limit int // 0 means DefaultPageSize; capped at MaxPageSize
}

// PageLimit returns the effective page size.
func (o ListOptions) PageLimit() int {
	switch {
	case o.Limit <= 0:
		return DefaultPageSize
	case o.Limit > MaxPageSize:
		return MaxPageSize
	}
	return o.Limit
}

// Page is one page of a list. Next is empty on the last page.
type Page[T any] struct {
	Items []T
	Next  string
}

// NewUUID returns a random (version 4) UUID in its canonical lower-case form.
func NewUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on supported platforms
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// IsUUID reports whether s is a UUID in canonical form (any case).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}

// NewKey returns n random bytes, base64-encoded: the form of Azure's shared
// access keys (n = 32 for hub keys, 64 for DPS keys).
func NewKey(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// NewETag returns a fresh opaque entity tag value (without quotes).
func NewETag() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ETagMatches reports whether an If-Match value permits a write to a resource
// whose current tag is current. An empty or "*" If-Match matches anything.
// Quotes around either value are ignored.
func ETagMatches(ifMatch, current string) bool {
	ifMatch = strings.Trim(strings.TrimSpace(ifMatch), `"`)
	if ifMatch == "" || ifMatch == "*" {
		return true
	}
	return ifMatch == strings.Trim(current, `"`)
}

// SystemData records who created and last changed a resource, as ARM does.
type SystemData struct {
	CreatedBy          string
	CreatedByType      PrincipalType
	CreatedAt          time.Time
	LastModifiedBy     string
	LastModifiedByType PrincipalType
	LastModifiedAt     time.Time
}

// Touch records a change by p at t, filling the creation fields on first use.
func (s *SystemData) Touch(p *Principal, t time.Time) {
	name, typ := "", PrincipalType("")
	if p != nil {
		name, typ = p.LoginName(), p.Type
	}
	if s.CreatedAt.IsZero() {
		s.CreatedBy, s.CreatedByType, s.CreatedAt = name, typ, t
	}
	s.LastModifiedBy, s.LastModifiedByType, s.LastModifiedAt = name, typ, t
}

// ProvisioningState is the ARM provisioning state of a resource.
type ProvisioningState string

// Provisioning states of ARM resources.
const (
	ProvisioningSucceeded    ProvisioningState = "Succeeded"
	ProvisioningFailed       ProvisioningState = "Failed"
	ProvisioningCanceled     ProvisioningState = "Canceled"
	ProvisioningProvisioning ProvisioningState = "Provisioning"
	ProvisioningUpdating     ProvisioningState = "Updating"
	ProvisioningDeleting     ProvisioningState = "Deleting"
	ProvisioningAccepted     ProvisioningState = "Accepted"
)

// Package sphere is the service behind both management surfaces of the
// Sphere-style model (the integrated ARM API and the legacy tenant API):
// the business rules of catalogs, products, device groups, devices, images,
// deployments, certificates, counts, insights and long-running operations.
//
// It speaks no HTTP and checks no permissions: the surfaces authorize each
// call first. Every write goes through ferry.Store, in one transaction
// where several rows change. The caller in the context (ferry.Caller) is
// recorded in systemData.
package sphere

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// Limits.
const (
	MaxClaimDevices = 1000 // device IDs in one bulk claim
	MaxNameLength   = 50   // product and device group names
)

// Config configures a Service.
type Config struct {
	Store  ferry.Store
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil is time.Now
}

// Service implements the Sphere-style management rules.
type Service struct {
	store ferry.Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Store returns the service's store, for reads the service does not wrap.
func (s *Service) Store() ferry.Store { return s.store }

// Now returns the service's clock reading in UTC.
func (s *Service) Now() time.Time { return s.now().UTC() }

// principal returns the principal of the context's caller, or nil.
func principal(ctx context.Context) *ferry.Principal {
	if c := ferry.CallerFromContext(ctx); c != nil {
		return c.Principal
	}
	return nil
}

func (s *Service) touch(ctx context.Context, sd *ferry.SystemData) {
	sd.Touch(principal(ctx), s.Now())
}

// IsSystemName reports whether name is ".default" or ".unassigned", the
// names that stand for "no product" or "no device group".
func IsSystemName(name string) bool {
	return strings.EqualFold(name, ferry.DefaultName) || strings.EqualFold(name, ferry.UnassignedName)
}

var deviceIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{128}$`)

// NormalizeDeviceID checks a device ID (128 characters of [A-Za-z0-9-])
// and returns it in upper case. Returns EINVALID otherwise.
func NormalizeDeviceID(id string) (string, error) {
	if !deviceIDPattern.MatchString(id) {
		return "", ferry.Errorf(ferry.EINVALID, "The device ID '%s' is not valid: it must be 128 characters of letters, digits and '-'.", truncate(id, 140))
	}
	return strings.ToUpper(id), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkName validates a product or device group name on both surfaces.
func checkName(what, name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return ferry.Errorf(ferry.EINVALID, "The %s name is required.", what)
	case len(name) > MaxNameLength:
		return ferry.Errorf(ferry.EINVALID, "The %s name must be at most %d characters.", what, MaxNameLength)
	case IsSystemName(name):
		return ferry.Errorf(ferry.EINVALID, "'.default' and '.unassigned' are system defined values and cannot be used for %s name.", what)
	}
	return nil
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

// record stores a finished operation of the given type.
func (s *Service) record(ctx context.Context, tx ferry.Tx, typ ferry.OperationType, catalogID, resourceID string) (*ferry.Operation, error) {
	now := s.Now()
	op := &ferry.Operation{
		ID: ferry.NewUUID(), CatalogID: catalogID, Type: typ, Name: operationNames[typ],
		State: ferry.OpComplete, ResourceID: resourceID, ResourceLocation: resourceID,
		CreatedAt: now, StartedAt: now, CompletedAt: now,
	}
	if err := tx.CreateOperation(ctx, op); err != nil {
		return nil, fmt.Errorf("record operation: %w", err)
	}
	return op, nil
}

// operationNames are the ARM operation names of the recorded operations.
var operationNames = map[ferry.OperationType]string{
	ferry.OpDeviceClaim:             "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/write",
	ferry.OpBulkDeviceClaim:         "Microsoft.AzureSphere/catalogs/products/deviceGroups/claimDevices/action",
	ferry.OpDeviceUpdateDeviceGroup: "Microsoft.AzureSphere/catalogs/products/deviceGroups/devices/write",
	ferry.OpCreateProduct:           "Microsoft.AzureSphere/catalogs/products/write",
	ferry.OpDeployToDeviceGroup:     "Microsoft.AzureSphere/catalogs/products/deviceGroups/deployments/write",
	ferry.OpImageUpload:             "Microsoft.AzureSphere/catalogs/uploadImage/action",
	ferry.OpTenantCreation:          "Microsoft.AzureSphere/catalogs/write",
	ferry.OpDeleteDeviceGroup:       "Microsoft.AzureSphere/catalogs/products/deviceGroups/delete",
	ferry.OpDeleteProduct:           "Microsoft.AzureSphere/catalogs/products/delete",
}

// GetOperation returns an operation. Returns ENOTFOUND if none.
func (s *Service) GetOperation(ctx context.Context, id string) (*ferry.Operation, error) {
	op, err := s.store.GetOperation(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("get operation: %w", err)
	}
	return op, nil
}

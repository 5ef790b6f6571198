package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-iot/ferry"
)

// Record is one audit event in the shape of Azure Monitor's AuditLogs
// resource log category (table ASCAuditLogs), as diagnostic settings
// export it.
type Record struct {
	Time              time.Time      `json:"time"`
	ResourceID        string         `json:"resourceId"` // the catalog's ARM ID, upper case
	Category          string         `json:"category"`   // "AuditLogs"
	Location          string         `json:"location"`
	OperationName     string         `json:"operationName"` // e.g. "ProductCreate"
	ResultType        string         `json:"resultType"`    // "Success" or "Failure"
	ResultDescription string         `json:"resultDescription"`
	Identity          string         `json:"identity"` // JSON, as Azure writes it
	Properties        map[string]any `json:"properties"`
	CorrelationID     string         `json:"correlationId"`
	DurationMs        int64          `json:"durationMs"`
}

// ASC returns the ASCAuditLogs record of an event.
func ASC(e *ferry.AuditEvent) Record {
	name := OperationName(e.Operation, e.StatusCode)
	desc := e.ResultDescription
	if desc == "" {
		desc = name + " succeeded"
		if e.Result == ferry.ResultFailure {
			desc = name + " failed"
		}
	}
	kind := "ArmUserPrincipalName"
	if e.PrincipalType == ferry.PrincipalServicePrincipal {
		kind = "ArmServicePrincipalId"
	}
	ident, _ := json.Marshal(map[string]any{"Other": []map[string]string{{"Identity": e.PrincipalName, "Description": kind}}})
	props := map[string]any{
		"ResourceId": e.ResourceID, "Surface": string(e.Surface), "Action": e.Action,
		"OperationId": e.Operation, "StatusCode": e.StatusCode, "PrincipalId": e.PrincipalID,
		"UserAgent": e.UserAgent, "ClientIp": e.ClientIP, "CatalogId": e.CatalogID,
	}
	return Record{
		Time: e.Time.UTC(), ResourceID: strings.ToUpper(catalogOf(e.ResourceID)), Category: "AuditLogs", Location: "global",
		OperationName: name, ResultType: e.Result, ResultDescription: desc, Identity: string(ident),
		Properties: props, CorrelationID: e.CorrelationID, DurationMs: e.Duration.Milliseconds(),
	}
}

// catalogOf returns the catalog part of an ARM resource ID, or the ID.
func catalogOf(id string) string {
	r, err := ferry.ParseResourceID(id)
	if err != nil || len(r.Types) == 0 || !strings.EqualFold(r.Types[0], "catalogs") {
		return id
	}
	r.Types, r.Names = r.Types[:1], r.Names[:1]
	return r.String()
}

// singular names the resources of the swagger's operation groups.
var singular = map[string]string{
	"Catalogs": "Catalog", "Products": "Product", "DeviceGroups": "DeviceGroup", "Devices": "Device",
	"Images": "Image", "Deployments": "Deployment", "Certificates": "Certificate",
}

// OperationName turns an operationId ("Products_CreateOrUpdate") into the
// audit log's operation name ("ProductCreate" when it created, 201, else
// "ProductUpdate"). Claims read "DeviceClaim"; other IDs keep their verb
// ("CatalogUploadImage"); unknown forms are returned as they are.
func OperationName(operationID string, status int) string {
	group, verb, ok := strings.Cut(operationID, "_")
	res, known := singular[group]
	if !ok || !known {
		return operationID
	}
	switch {
	case verb == "CreateOrUpdate" && status == 201:
		verb = "Create"
	case verb == "CreateOrUpdate":
		verb = "Update"
	case strings.HasPrefix(verb, "ListBy"):
		verb = "List"
	case verb == "ClaimDevices":
		return "DeviceClaim"
	}
	return res + verb
}

// Query selects audit events for the REST API and the CLI.
type Query struct {
	Since       time.Time // inclusive; zero: no bound
	Until       time.Time // exclusive; zero: no bound
	PrincipalID string
	Operation   string // an operationId
	Result      string // "", "Success" or "Failure"
	Surface     ferry.Surface
	CatalogID   string
	ferry.ListOptions
}

// Find returns a page of the events q selects, newest first. Returns
// EINVALID for a reversed time range or an unknown result.
func Find(ctx context.Context, store ferry.AuditStore, q Query) (ferry.Page[*ferry.AuditEvent], error) {
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return ferry.Page[*ferry.AuditEvent]{}, ferry.Errorf(ferry.EINVALID, "The end of the time range must be after its start.")
	}
	switch q.Result {
	case "", ferry.ResultSuccess, ferry.ResultFailure:
	default:
		return ferry.Page[*ferry.AuditEvent]{}, ferry.Errorf(ferry.EINVALID, "The result must be %s or %s.", ferry.ResultSuccess, ferry.ResultFailure)
	}
	p, err := store.ListAudit(ctx, ferry.AuditFilter{
		Since: q.Since, Until: q.Until, Surface: q.Surface, CatalogID: q.CatalogID,
		PrincipalID: q.PrincipalID, Operation: q.Operation, Result: q.Result, ListOptions: q.ListOptions,
	})
	if err != nil {
		return p, fmt.Errorf("find audit events: %w", err)
	}
	return p, nil
}

// FindASC is Find with the events in the ASCAuditLogs shape.
func FindASC(ctx context.Context, store ferry.AuditStore, q Query) ([]Record, string, error) {
	p, err := Find(ctx, store, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]Record, len(p.Items))
	for i, e := range p.Items {
		out[i] = ASC(e)
	}
	return out, p.Next, nil
}

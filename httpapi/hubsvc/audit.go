package hubsvc

import (
	"context"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// Operation IDs of the audited writes. Those of the IoT Hub and DPS
// service APIs are the operationIds of Azure's REST specs with the
// "IotHub." and "Dps." prefixes of the rbac operation table; those of
// device templates and device groups are the IoT Central REST API's.
const (
	auditDeviceWrite        = "IotHub.Devices_CreateOrUpdateIdentity"
	auditDeviceDelete       = "IotHub.Devices_DeleteIdentity"
	auditTwinUpdate         = "IotHub.Devices_UpdateTwin"
	auditTwinReplace        = "IotHub.Devices_ReplaceTwin"
	auditMethodInvoke       = "IotHub.Devices_InvokeMethod"
	auditC2DSend            = "IotHub.CloudToDeviceMessages_Send"
	auditC2DPurge           = "IotHub.CloudToDeviceMessages_PurgeQueue"
	auditJobCreate          = "IotHub.Jobs_CreateScheduledJob"
	auditJobCancel          = "IotHub.Jobs_CancelScheduledJob"
	auditEnrollmentGroupPut = "Dps.EnrollmentGroup_CreateOrUpdate"
	auditEnrollmentGroupDel = "Dps.EnrollmentGroup_Delete"
	auditEnrollmentPut      = "Dps.IndividualEnrollment_CreateOrUpdate"
	auditEnrollmentDel      = "Dps.IndividualEnrollment_Delete"
	auditRegistrationDel    = "Dps.DeviceRegistrationState_Delete"
	auditTemplateCreate     = "DeviceTemplates_Create"
	auditTemplateRemove     = "DeviceTemplates_Remove"
	auditGroupCreate        = "DeviceGroups_Create"
	auditGroupUpdate        = "DeviceGroups_Update"
	auditGroupRemove        = "DeviceGroups_Remove"
)

// auditNote collects, while a request is served, what its audit event
// names: the hub or provisioning service and the caller once known, and
// the handler's error.
type auditNote struct {
	resource string // the hub's or service's resource ID, or its host
	caller   *ferry.Caller
	err      error
}

type auditKey struct{}

func noteFrom(ctx context.Context) *auditNote {
	n, _ := ctx.Value(auditKey{}).(*auditNote)
	return n
}

// hubResource names a hub in audit events: its resource ID, or, for a hub
// made outside ARM, which has none, its host name.
func hubResource(h *ferry.Hub) string {
	if h.SubscriptionID != "" {
		return h.ResourceID().String()
	}
	return h.HostName
}

// serviceResource names a provisioning service in audit events as
// hubResource names a hub; host is the request's when the service has no
// host name of its own.
func serviceResource(ps *ferry.ProvisioningService, host string) string {
	if ps.SubscriptionID != "" {
		return ps.ResourceID().String()
	}
	if ps.HostName != "" {
		return ps.HostName
	}
	return host
}

// auditedHub is a hub route whose every call, allowed or refused, is
// recorded as operation on the resource kind/{id} of the hub.
func (s *server) auditedHub(operation, kind string, op Operation, h hubHandler) http.Handler {
	return s.audited(ferry.SurfaceHub, operation, kind, op, s.renderHub, s.withHub(op, h))
}

// auditedDPS is a provisioning-service route whose every call, allowed or
// refused, is recorded as operation on the resource kind/{id} of the
// service.
func (s *server) auditedDPS(operation, kind string, op Operation, h dpsHandler) http.Handler {
	return s.audited(ferry.SurfaceDPS, operation, kind, op, s.renderDPS, s.withService(op, h))
}

// audited serves inner, rendering its error with render, and records the
// call. The event holds no request body or header beyond the user agent,
// so no key or signature reaches the log.
func (s *server) audited(surface ferry.Surface, operation, kind string, op Operation, render httpapi.ErrorRenderer, inner httpapi.HandlerFunc) http.Handler {
	handle := httpapi.Handle(s.log, render, func(w http.ResponseWriter, r *http.Request) error {
		err := inner(w, r)
		if n := noteFrom(r.Context()); n != nil {
			n.err = err
		}
		return err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		n := &auditNote{}
		sw := &httpapi.StatusWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, n))
		handle.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		e := &ferry.AuditEvent{
			Time: s.now().UTC(), Surface: surface, Operation: operation, Action: string(op),
			UserAgent: r.UserAgent(), ClientIP: clientIP(r), StatusCode: sw.Status,
			CorrelationID: httpapi.CorrelationID(r.Context()), Duration: s.now().Sub(start),
			Result: ferry.ResultSuccess, ResultDescription: operation + " succeeded",
		}
		if n.resource != "" {
			e.ResourceID = n.resource + "/" + kind + "/" + r.PathValue("id")
		}
		if c := n.caller; c != nil {
			e.PrincipalID, e.PrincipalName = c.ID(), c.Name()
			if c.Principal != nil {
				e.PrincipalType = c.Principal.Type
			}
		}
		if sw.Status >= 400 {
			e.Result, e.ResultDescription = ferry.ResultFailure, operation+" failed"
			if n.err != nil {
				e.ResultDescription += ": " + ferry.ErrorMessage(n.err)
			}
		}
		if err := s.audit.Record(r.Context(), e); err != nil {
			// The answer is written: report the gap here, once.
			s.log.ErrorContext(r.Context(), "audit record failed", "operation", operation, "err", err)
		}
	})
}

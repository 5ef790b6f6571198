package ferry

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// MethodRequest is a direct method call from a service to a device.
type MethodRequest struct {
	MethodName      string
	Payload         json.RawMessage // any JSON value; null when absent
	ResponseTimeout time.Duration   // how long to wait for the device's answer; 0: 30 s
	ConnectTimeout  time.Duration   // how long to wait for the device to connect; 0: fail at once
}

// MethodResponse is a device's answer to a direct method.
type MethodResponse struct {
	Status  int             // the status the device chose
	Payload json.RawMessage // the device's JSON answer
}

// TwinPatch is a service-side twin change: tags and desired properties,
// merged as JSON merge patches (a null member removes the key).
type TwinPatch struct {
	Tags    map[string]any
	Desired map[string]any
}

// ErrDeviceNotOnline is returned by a method call or a direct operation on a
// device that is not connected. IoT Hub answers 404103.
var ErrDeviceNotOnline = &Error{Code: ENOTFOUND, Message: "device is not online"}

// ErrMethodTimeout is returned when a device does not answer a direct method
// in time. IoT Hub answers 504101.
var ErrMethodTimeout = &Error{Code: ETIMEOUT, Message: "timed out waiting for the response from device"}

// IsDeviceNotOnline reports whether err says the device is not connected.
func IsDeviceNotOnline(err error) bool { return errors.Is(err, ErrDeviceNotOnline) }

// IsMethodTimeout reports whether err says a device did not answer in time.
func IsMethodTimeout(err error) bool { return errors.Is(err, ErrMethodTimeout) }

// HubService is what services, the REST surfaces and the migration
// orchestrator do to connected devices. The registry itself (identities,
// twins at rest) lives in the store; IdentityChanged tells the hubs about a
// change made there.
type HubService interface {
	// InvokeMethod calls a direct method on a connected device and waits for
	// its answer. Returns ErrDeviceNotOnline, ErrMethodTimeout, or ENOTFOUND
	// if the hub or identity does not exist.
	InvokeMethod(ctx context.Context, hubID, deviceID string, req MethodRequest) (MethodResponse, error)
	// SendC2D queues a cloud-to-device message and delivers it at once if the
	// device is connected. Returns ENOTFOUND, or ETHROTTLED when MaxPendingC2D
	// messages are pending.
	SendC2D(ctx context.Context, m *C2DMessage) error
	// UpdateTwin merges a service-side patch into a twin if ifMatch matches
	// ("" or "*" always does), notifies a connected device of desired
	// changes, and returns the new twin. Returns ENOTFOUND or EPRECONDITION.
	UpdateTwin(ctx context.Context, hubID, deviceID string, patch TwinPatch, ifMatch string) (*Twin, error)
	// ReplaceTwin replaces tags and desired properties (PUT semantics).
	ReplaceTwin(ctx context.Context, hubID, deviceID string, patch TwinPatch, ifMatch string) (*Twin, error)
	// IdentityChanged reloads an identity after a registry change; a session
	// of a deleted or disabled identity, or one whose credentials changed, is
	// closed.
	IdentityChanged(ctx context.Context, hubID, deviceID string) error
	// HubChanged reloads a hub after a change (policies, host name) or its
	// deletion.
	HubChanged(ctx context.Context, hubID string) error
	// Connected reports whether a device holds a session on the hub.
	Connected(hubID, deviceID string) bool
}

// ProvisioningChanged is told about a change to a provisioning service or
// its enrollments, so that cached state is reloaded.
type ProvisioningChanged interface {
	// ServiceChanged reloads a provisioning service (scope, linked hubs,
	// policy) after a change or its deletion.
	ServiceChanged(ctx context.Context, serviceID string) error
}

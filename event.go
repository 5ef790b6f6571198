package ferry

import (
	"context"
	"encoding/json"
	"time"
)

// Message sources of events, with IoT Central's export spelling, plus
// Ferry's own for migrations.
const (
	SourceTelemetry          = "telemetry"
	SourceProperties         = "properties"
	SourceDeviceConnectivity = "deviceConnectivity"
	SourceDeviceLifecycle    = "deviceLifecycle"
	SourceMigration          = "migration"
)

// Message types of non-telemetry events.
const (
	TypeConnected                    = "connected"
	TypeDisconnected                 = "disconnected"
	TypeRegistered                   = "registered"
	TypeProvisioned                  = "provisioned"
	TypeDeleted                      = "deleted"
	TypeEnabled                      = "enabled"
	TypeDisabled                     = "disabled"
	TypeDevicePropertyReportedChange = "devicePropertyReportedChange"
	TypeDevicePropertyDesiredChange  = "devicePropertyDesiredChange"
	TypeMigrationTransition          = "deviceMigrationTransition"
)

// Event is something that happened to a device: telemetry it sent, or a
// change of its connection, lifecycle or properties. Events flow from the
// device plane over the bus to export sinks, the monitor and the migration
// verifier.
type Event struct {
	ID         string    // unique; the message ID for telemetry when the device set one
	Time       time.Time // enqueued time
	Source     string    // Source* constants
	Type       string    // Type* constants; "" for telemetry
	HubID      string
	HubHost    string
	DeviceID   string
	ModelID    string
	Module     string
	Component  string
	Body       []byte            // telemetry payload exactly as sent
	Properties map[string]string // application properties
	System     map[string]string // system properties: messageId, contentType, ...
	Data       json.RawMessage   // structured detail of non-telemetry events
}

// EventBus carries events from where they happen to whoever listens. On one
// node it is in-process; several nodes share NATS JetStream.
type EventBus interface {
	// Publish hands events to the bus. It does not wait for subscribers.
	Publish(ctx context.Context, events ...Event) error
	// Subscribe calls fn for every event published after it returns, in
	// order, from one goroutine per subscription, until cancel is called.
	// A subscriber that falls too far behind loses events, and the bus counts
	// them; durable consumers use an EventSink instead.
	Subscribe(name string, fn func(Event)) (cancel func())
}

// EventSink stores events durably: WriteEvents returns only once they will
// survive a crash of the process.
type EventSink interface {
	WriteEvents(ctx context.Context, events []Event) error
	Close() error
}

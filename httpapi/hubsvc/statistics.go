package hubsvc

import (
	"fmt"
	"net/http"

	"github.com/ferry-iot/ferry"
)

// ConnectionCapacity is how many device connections the server holds and
// may hold: its MQTT gateway's open connections and connection limit.
type ConnectionCapacity struct {
	Open  int64
	Limit int64
}

// connectedCounter is implemented by hub services that count their
// sessions per hub (package hub does).
type connectedCounter interface {
	ConnectedDevices(hubID string) int
}

// deviceStatistics is IoT Hub's RegistryStatistics.
type deviceStatistics struct {
	TotalDeviceCount    int64 `json:"totalDeviceCount"`
	EnabledDeviceCount  int64 `json:"enabledDeviceCount"`
	DisabledDeviceCount int64 `json:"disabledDeviceCount"`
}

// serviceStatistics is IoT Hub's ServiceStatistics, with Ferry's
// extension: the serving process's device connections, which clients
// that know only Azure's shape ignore.
type serviceStatistics struct {
	ConnectedDeviceCount int64           `json:"connectedDeviceCount"`
	Ferry                *ferryStatistic `json:"ferry,omitempty"`
}

type ferryStatistic struct {
	OpenConnections int64 `json:"openConnections"`
	ConnectionLimit int64 `json:"connectionLimit"`
}

// getDeviceStatistics serves GET /statistics/devices: the registry's
// identities, enabled and disabled.
func (s *server) getDeviceStatistics(w http.ResponseWriter, r *http.Request, h *ferry.Hub) error {
	count := func(status ferry.DeviceStatus) (int64, error) {
		n, err := s.cfg.Store.CountDeviceIdentities(r.Context(), ferry.DeviceIdentityFilter{HubID: h.ID, Status: status})
		if err != nil {
			return 0, fmt.Errorf("device statistics: %w", err)
		}
		return int64(n), nil
	}
	enabled, err := count(ferry.DeviceEnabled)
	if err != nil {
		return err
	}
	disabled, err := count(ferry.DeviceDisabled)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, "", deviceStatistics{TotalDeviceCount: enabled + disabled,
		EnabledDeviceCount: enabled, DisabledDeviceCount: disabled})
}

// getServiceStatistics serves GET /statistics/service: the devices
// connected to the hub and, when Config.Capacity is set, the server's
// device connections and their limit.
func (s *server) getServiceStatistics(w http.ResponseWriter, r *http.Request, h *ferry.Hub) error {
	var out serviceStatistics
	if c, ok := s.cfg.Hubs.(connectedCounter); ok {
		out.ConnectedDeviceCount = int64(c.ConnectedDevices(h.ID))
	} else {
		n, err := s.cfg.Store.CountDeviceIdentities(r.Context(), ferry.DeviceIdentityFilter{HubID: h.ID, ConnectionState: ferry.Connected})
		if err != nil {
			return fmt.Errorf("service statistics: %w", err)
		}
		out.ConnectedDeviceCount = int64(n)
	}
	if s.cfg.Capacity != nil {
		c := s.cfg.Capacity()
		out.Ferry = &ferryStatistic{OpenConnections: c.Open, ConnectionLimit: c.Limit}
	}
	return writeJSON(w, http.StatusOK, "", out)
}

package mqttgw

import (
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// TestSlowHousekeepingFindsMochisTickers fails when a mochi upgrade moves
// the sweep tickers the gateway slows down.
func TestSlowHousekeepingFindsMochisTickers(t *testing.T) {
	srv := mqtt.New(&mqtt.Options{InlineClient: false})
	t.Cleanup(func() { _ = srv.Close() })
	if err := slowHousekeeping(srv, time.Hour); err != nil {
		t.Fatal(err)
	}
}

func TestSlowHousekeepingRefusesAnUnknownTicker(t *testing.T) {
	srv := mqtt.New(nil)
	t.Cleanup(func() { _ = srv.Close() })
	saved := housekeepingTickers
	t.Cleanup(func() { housekeepingTickers = saved })
	housekeepingTickers = []string{"noSuchTicker"}
	if err := slowHousekeeping(srv, time.Hour); err == nil {
		t.Fatal("an unknown ticker was not reported")
	}
}

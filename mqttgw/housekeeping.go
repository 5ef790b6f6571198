package mqttgw

import (
	"fmt"
	"reflect"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
)

// HousekeepingInterval is how often mochi sweeps its clients for expired
// sessions and expired inflight messages.
//
// mochi runs both sweeps every second, and each copies the map of every
// client and every client's inflight map: with 15,000 idle devices that was
// a fifth of a Ferry process's CPU. Neither sweep has work to do here.
// Sessions are clean (the gateway marks every connection so; mochi drops a
// clean client when it disconnects), and inflight messages expire only after
// mochi's maximum message expiry of a day, while the hub tracks its own
// QoS 1 deliveries. So the sweeps run once a minute.
const HousekeepingInterval = time.Minute

// housekeepingTickers names the tickers of mochi's system event loop that
// drive the two sweeps (mochi v2.7: Server.loop.clientExpiry and
// Server.loop.inflightExpiry).
var housekeepingTickers = []string{"clientExpiry", "inflightExpiry"}

// slowHousekeeping resets mochi's sweep tickers to every. mochi has no
// option for it, so it reaches the unexported tickers by reflection; if a
// mochi upgrade renames them it returns an error (New fails and the tests
// say so) rather than silently keeping the per-second sweeps.
func slowHousekeeping(srv *mqtt.Server, every time.Duration) error {
	loop := reflect.ValueOf(srv).Elem().FieldByName("loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() {
		return fmt.Errorf("mqttgw: mochi's event loop not found")
	}
	tickerType := reflect.TypeFor[*time.Ticker]()
	for _, name := range housekeepingTickers {
		f := loop.Elem().FieldByName(name)
		if !f.IsValid() || f.Type() != tickerType {
			return fmt.Errorf("mqttgw: mochi's %s ticker not found", name)
		}
		t := *(**time.Ticker)(unsafe.Pointer(f.UnsafeAddr()))
		if t == nil {
			return fmt.Errorf("mqttgw: mochi's %s ticker not set", name)
		}
		t.Reset(every)
	}
	return nil
}

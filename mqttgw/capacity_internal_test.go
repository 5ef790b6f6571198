package mqttgw

import (
	"context"
	"testing"
)

func TestConnectionLimit(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxConns int64
		files    uint64
		reserve  int64
		want     int64
	}{
		{"FilesBind", 200_000, 20_000, 1000, 19_000},
		{"MaxConnectionsBinds", 500, 20_000, 1000, 500},
		{"SmallFileLimitKeepsThreeQuarters", 200_000, 1024, 1000, 768},
		{"NoReserve", 200_000, 20_000, -1, 20_000},
		{"UnknownFileLimit", 200_000, 0, 1000, 200_000},
		{"Unlimited", 200_000, 1 << 63, 1000, 200_000},
		{"AtLeastOne", 200_000, 1, 1000, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := connectionLimit(c.maxConns, c.files, c.reserve); got != c.want {
				t.Errorf("connectionLimit(%d, %d, %d) = %d, want %d", c.maxConns, c.files, c.reserve, got, c.want)
			}
		})
	}
}

func TestCapacityWithinOpenFiles(t *testing.T) {
	files := openFileLimit()
	if files == 0 {
		t.Skip("open-file limit unknown here")
	}
	g, err := New(Config{Hubs: nopHubs{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	c := g.Capacity()
	if c.Open != 0 || c.Limit != connectionLimit(200_000, files, DefaultFileReserve) || c.Limit != g.srv.Options.Capabilities.MaximumClients {
		t.Errorf("capacity %+v with %d open files; mochi sheds beyond %d", c, files, g.srv.Options.Capabilities.MaximumClients)
	}
}

type nopHubs struct{}

func (nopHubs) ConnectDevice(context.Context, *ConnectRequest) (Session, error) { return nil, nil }

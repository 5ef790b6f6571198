package device_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferry-iot/ferry/device"
	"github.com/ferry-iot/ferry/device/devicetest"
	"github.com/ferry-iot/ferry/store/storetest"
)

// BenchmarkProvisionAndConnect measures simulated devices brought up per
// second: DPS registration (group key) plus hub connection, both over TLS
// with session resumption, 128 × GOMAXPROCS devices at a time, on SQLite.
func BenchmarkProvisionAndConnect(b *testing.B) {
	p := devicetest.NewPlane(b, storetest.OpenSQLite(b))
	var next atomic.Int64
	var mu sync.Mutex
	var clients []*device.Client
	b.SetParallelism(128) // × GOMAXPROCS goroutines: the server makes every device wait ≥1 s (retry-after)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("bench-%07d", next.Add(1))
			c, _, err := device.ProvisionAndConnect(context.Background(), p.ProvisionConfig(id), device.Config{})
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			clients = append(clients, c)
			mu.Unlock()
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "devices/s")
	for _, c := range clients {
		c.Close()
	}
}

// BenchmarkTelemetry measures QoS 1 telemetry accepted and acknowledged per
// second through the SDK's queue, from 10 devices, with the hub's durable
// export sink on (SQLite store).
func BenchmarkTelemetry(b *testing.B) {
	p := devicetest.NewPlane(b, storetest.OpenSQLite(b))
	const devices = 10
	clients := make([]*device.Client, devices)
	for i := range clients {
		clients[i], _ = p.Connect(fmt.Sprintf("tel-%02d", i), device.Config{InFlight: 64})
	}
	msg := device.Message{Body: []byte(`{"seq":1,"temperature":21.5}`), ContentType: "application/json", ContentEncoding: "utf-8"}
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, c := range clients {
		n := b.N / devices
		if i < b.N%devices {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := c.Send(context.Background(), msg); err != nil {
					b.Error(err)
					return
				}
			}
			if err := c.Flush(context.Background()); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

package mqttgw

import "sync/atomic"

// DefaultFileReserve is how many of the process's open files the gateway
// leaves to everything else (the database, listeners, HTTP clients and
// servers, export files) when it derives its connection limit from the
// open-file limit. With the 20,000 open files of the machines Ferry is
// measured on, devices get 19,000.
const DefaultFileReserve = 1000

// Capacity is how many device connections the gateway holds and may hold.
type Capacity struct {
	// Open counts the connections the gateway is serving: MQTT sessions
	// and connections still in their TLS handshake or CONNECT, each of
	// which holds an open file.
	Open int64
	// Limit is the most sessions the gateway accepts: the lower of
	// Config.MaxConnections and the open-file limit less the reserve.
	// Beyond it a device is refused with CONNACK 3.
	Limit int64
}

// Capacity returns the gateway's open connections and its connection limit.
func (g *Gateway) Capacity() Capacity {
	return Capacity{Open: atomic.LoadInt64(&g.open), Limit: g.limit}
}

// connectionLimit returns the lower of max and the open-file limit less
// reserve. The reserve shrinks to a quarter of a small open-file limit, so
// that a developer machine's 1,024 files still leave devices room.
// reserve < 0 means none.
func connectionLimit(maxConns int64, files uint64, reserve int64) int64 {
	if files == 0 || files >= 1<<62 {
		return maxConns // unknown or unlimited
	}
	f := int64(files)
	if reserve < 0 {
		reserve = 0
	}
	reserve = min(reserve, f/4)
	return max(1, min(maxConns, f-reserve))
}

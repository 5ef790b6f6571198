package httpapi

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/prometheus/client_golang/prometheus"
)

// StatusWriter remembers the status a handler wrote and counts the bytes
// of its body, for the middleware that log, count or audit requests.
type StatusWriter struct {
	http.ResponseWriter
	Status int // 0 until the handler writes a header or body
	Bytes  int64
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Status == 0 {
		w.Status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.Status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Metrics counts requests and observes their latency by route pattern,
// method and status code. The route is the ServeMux pattern that matched, so
// label cardinality stays bounded whatever the paths hold.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ferry_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// Middleware wraps a handler (usually a ServeMux) with metrics, an access
// log at debug level and a correlation ID on every response.
func (m *Metrics) Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("x-ms-client-request-id")
		if id == "" || len(id) > 128 {
			id = ferry.NewUUID()
		}
		corr := r.Header.Get("x-ms-correlation-request-id")
		if corr == "" || len(corr) > 128 {
			corr = id
		}
		w.Header().Set("x-ms-request-id", id)
		w.Header().Set("x-ms-correlation-request-id", corr)
		r = r.WithContext(WithCorrelationID(r.Context(), corr))
		sw := &StatusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.Status == 0 {
			sw.Status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.Status)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(d.Seconds())
		log.DebugContext(r.Context(), "http request", "method", r.Method, "route", route,
			"status", sw.Status, "bytes", sw.Bytes, "duration", d, "correlation_id", corr)
	})
}

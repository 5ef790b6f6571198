package httpapi

import (
	"context"
	"net/http"
	"time"
)

// Pinger is anything readiness depends on, such as the store.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health serves /healthz (the process is up) and /readyz (every dependency
// answers: the store is reachable and its schema current).
type Health struct {
	Checks map[string]Pinger
}

// Register adds the health routes to mux.
func (h *Health) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status, checks := http.StatusOK, map[string]string{}
		for name, c := range h.Checks {
			if err := c.Ping(ctx); err != nil {
				status, checks[name] = http.StatusServiceUnavailable, "unavailable"
				continue
			}
			checks[name] = "ok"
		}
		state := "ready"
		if status != http.StatusOK {
			state = "not ready"
		}
		_ = WriteJSON(w, status, map[string]any{"status": state, "checks": checks})
	})
}

package hubsvc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/dtdl"
)

// Device templates and device groups are served in the shape of the IoT
// Central REST API (api-version 2022-07-31), so that operators' Central
// scripts carry over: /api/deviceTemplates and /api/deviceGroups under a
// hub's host. Templates are global in Ferry (a device's model ID means
// the same on every hub), so every hub host shows the same templates;
// device groups belong to the hub whose host is addressed.

// templateJSON is a device template as IoT Central returns it, with
// Ferry's read-only deviceMove.
type templateJSON struct {
	ID              string          `json:"@id"`
	Type            []string        `json:"@type"`
	DisplayName     string          `json:"displayName"`
	CapabilityModel json.RawMessage `json:"capabilityModel"`
	DeviceMove      deviceMoveJSON  `json:"deviceMove"`
	ETag            string          `json:"etag"`
}

// deviceMoveJSON says whether Ferry can move the template's devices, and
// through which component (the device method is "<component>*DeviceMove",
// or "DeviceMove" when component is empty).
type deviceMoveJSON struct {
	Supported bool   `json:"supported"`
	Component string `json:"component,omitempty"`
	Method    string `json:"method,omitempty"`
}

// listJSON is IoT Central's page of a list.
type listJSON[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

func templateOut(t *ferry.DeviceTemplate) templateJSON {
	out := templateJSON{ID: t.ID, Type: []string{"ModelDefinition", "DeviceModel"}, DisplayName: t.DisplayName,
		CapabilityModel: t.Model, ETag: t.ETag, DeviceMove: deviceMoveJSON{Supported: t.HasDeviceMove, Component: t.MigrationComponent}}
	// A template written by other means than this API may hold a model
	// this parser does not take; show it as stored then.
	if p, err := dtdl.Parse(t.Model); err == nil {
		out.CapabilityModel = p.CapabilityModel
	}
	if t.HasDeviceMove {
		out.DeviceMove.Method = dtdl.MoveCommand
		if t.MigrationComponent != "" {
			out.DeviceMove.Method = t.MigrationComponent + "*" + dtdl.MoveCommand
		}
	}
	return out
}

func templateNotFound(id string, err error) error {
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return hubErr(http.StatusNotFound, "DeviceTemplateNotFound", 404000,
			ferry.WrapError(ferry.ENOTFOUND, fmt.Sprintf("Device template %s not found.", truncateID(id)), err))
	}
	return err
}

// truncateID bounds what error messages quote of a request.
func truncateID(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// putTemplate serves PUT /api/deviceTemplates/{id}: the body is a DTDL
// interface, an array of interfaces or IoT Central's template document,
// whose @id is the ID in the URI. It creates or replaces; If-Match
// replaces only the version with that etag, If-None-Match: * only creates.
func (s *server) putTemplate(w http.ResponseWriter, r *http.Request, _ *ferry.Hub) error {
	id := r.PathValue("id")
	if !dtdl.ValidDTMI(id) {
		return ferry.Errorf(ferry.EINVALID, "The device template ID %q is not a DTMI like dtmi:example:Thermostat;1.", truncateID(id))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return ferry.WrapError(ferry.EINVALID, "The request body could not be read.", err)
	}
	if len(body) > maxBody {
		return ferry.Errorf(ferry.EINVALID, "The request body is larger than %d bytes.", maxBody)
	}
	body = withCentralID(body, id)
	p, err := dtdl.Parse(body)
	if err != nil {
		return ferry.WrapError(ferry.EINVALID, "The device template is not valid: "+err.Error()+".", err)
	}
	if p.ID != id {
		return ferry.Errorf(ferry.EINVALID, "The @id in the body (%s) does not match the ID in the URI.", truncateID(p.ID))
	}
	var model bytes.Buffer
	if err := json.Compact(&model, body); err != nil {
		return ferry.WrapError(ferry.EINVALID, "The request body is not valid JSON.", err)
	}
	t := &ferry.DeviceTemplate{ID: id, DisplayName: p.DisplayName, Model: model.Bytes(), HasDeviceMove: p.HasDeviceMove,
		MigrationComponent: p.MigrationComponent, CreatedAt: s.now()}
	match, noneMatch := ifMatch(r), r.Header.Get("If-None-Match")
	ctx := r.Context()
	err = s.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		old, err := tx.GetDeviceTemplate(ctx, id)
		switch {
		case ferry.IsCode(err, ferry.ENOTFOUND):
			if match != "" {
				return ferry.Errorf(ferry.EPRECONDITION, "The device template %s does not exist, so no etag matches.", id)
			}
		case err != nil:
			return err
		default:
			if noneMatch == "*" {
				return ferry.Errorf(ferry.EPRECONDITION, "The device template %s exists already.", id)
			}
			if !ferry.ETagMatches(match, old.ETag) {
				return ferry.Errorf(ferry.EPRECONDITION, "The etag does not match the device template's.")
			}
			t.CreatedAt = old.CreatedAt
		}
		return tx.PutDeviceTemplate(ctx, t)
	})
	if err != nil {
		return fmt.Errorf("put device template: %w", err)
	}
	s.log.InfoContext(ctx, "device template written", "template_id", id, "device_move", t.HasDeviceMove,
		"caller", ferry.CallerFromContext(ctx).Name())
	return writeJSON(w, http.StatusOK, t.ETag, templateOut(t))
}

// withCentralID adds the URI's ID to an IoT Central template document
// that has none, as Central takes the ID from the URI.
func withCentralID(body []byte, id string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if _, ok := m["capabilityModel"]; !ok {
		return body
	}
	if _, ok := m["@id"]; ok {
		return body
	}
	m["@id"], _ = json.Marshal(id)
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return b
}

func (s *server) getTemplate(w http.ResponseWriter, r *http.Request, _ *ferry.Hub) error {
	id := r.PathValue("id")
	t, err := s.cfg.Store.GetDeviceTemplate(r.Context(), id)
	if err != nil {
		return templateNotFound(id, err)
	}
	return writeJSON(w, http.StatusOK, t.ETag, templateOut(t))
}

func (s *server) deleteTemplate(w http.ResponseWriter, r *http.Request, _ *ferry.Hub) error {
	id := r.PathValue("id")
	ctx := r.Context()
	match := ifMatch(r)
	err := s.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		old, err := tx.GetDeviceTemplate(ctx, id)
		if err != nil {
			return err
		}
		if !ferry.ETagMatches(match, old.ETag) {
			return ferry.Errorf(ferry.EPRECONDITION, "The etag does not match the device template's.")
		}
		return tx.DeleteDeviceTemplate(ctx, id)
	})
	if err != nil {
		return templateNotFound(id, err)
	}
	s.log.InfoContext(ctx, "device template deleted", "template_id", id, "caller", ferry.CallerFromContext(ctx).Name())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listTemplates serves GET /api/deviceTemplates?$top=N, paged by nextLink.
func (s *server) listTemplates(w http.ResponseWriter, r *http.Request, _ *ferry.Hub) error {
	top, err := topParam(r)
	if err != nil {
		return err
	}
	page, err := s.cfg.Store.ListDeviceTemplates(r.Context(), ferry.ListOptions{After: r.URL.Query().Get("$skipToken"), Limit: top})
	if err != nil {
		return continuationErr(err)
	}
	out := listJSON[templateJSON]{Value: make([]templateJSON, 0, len(page.Items))}
	for _, t := range page.Items {
		out.Value = append(out.Value, templateOut(t))
	}
	out.NextLink = nextLink(r, page.Next)
	return writeJSON(w, http.StatusOK, "", out)
}

// topParam reads $top: the page size, 1 to 1000, 100 by default.
func topParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("$top")
	if v == "" {
		return ferry.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, ferry.Errorf(ferry.EINVALID, "$top must be between 1 and 1000.")
	}
	return n, nil
}

// nextLink is the URL of the page after the one served, or "" at the end.
func nextLink(r *http.Request, next string) string {
	if next == "" {
		return ""
	}
	q := r.URL.Query()
	q.Set("$skipToken", next)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

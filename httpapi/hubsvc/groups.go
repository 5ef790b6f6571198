package hubsvc

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/hubquery"
)

// groupJSON is a device group as IoT Central shows it. Its id is Ferry's
// group ID and its displayName the group's name, unique in the hub (case
// does not count), by which migrations also find it.
type groupJSON struct {
	ID          string  `json:"id"`
	DisplayName *string `json:"displayName,omitempty"`
	Filter      *string `json:"filter,omitempty"`
	Description *string `json:"description,omitempty"`
	ETag        string  `json:"etag,omitempty"`
}

// groupDeviceJSON is a device of a group, in IoT Central's device shape
// (template is the device's model ID) with its connection state as the
// hub sees it at the time of the request.
type groupDeviceJSON struct {
	ID              string `json:"id"`
	ETag            string `json:"etag,omitempty"`
	Enabled         bool   `json:"enabled"`
	Template        string `json:"template,omitempty"`
	ConnectionState string `json:"connectionState"`
}

func deviceGroupOut(g *ferry.HubDeviceGroup) groupJSON {
	filter := "SELECT * FROM devices"
	if g.Query != "" {
		filter += " WHERE " + g.Query
	}
	return groupJSON{ID: g.ID, DisplayName: &g.Name, Filter: &filter, Description: &g.Description, ETag: g.ETag}
}

// selectPrefix matches the part of a full query before its condition.
var selectPrefix = regexp.MustCompile(`(?is)^\s*select\s+\*\s+from\s+devices(?:\s+where\s+|\s*$)`)

// groupCondition returns the condition a filter holds: IoT Central's
// `SELECT * FROM devices WHERE ...`, or the condition alone.
func groupCondition(filter string) (string, error) {
	f := strings.TrimSpace(filter)
	if f == "" {
		return "", ferry.Errorf(ferry.EINVALID, "A device group needs a filter, such as SELECT * FROM devices WHERE $template = 'dtmi:example:Thermostat;1'.")
	}
	cond := f
	if len(f) >= 6 && strings.EqualFold(f[:6], "select") {
		q, err := hubquery.Parse(f)
		if err != nil {
			return "", ferry.WrapError(ferry.EINVALID, "The filter is not a valid device query: "+ferry.ErrorMessage(err), err)
		}
		loc := selectPrefix.FindStringIndex(f)
		if q.Source != hubquery.Devices || loc == nil {
			return "", ferry.Errorf(ferry.EINVALID, "A device group's filter selects from devices: SELECT * FROM devices WHERE ...")
		}
		cond = strings.TrimSpace(f[loc[1]:])
	}
	if _, err := hubquery.ParseCondition(cond); err != nil {
		return "", ferry.WrapError(ferry.EINVALID, "The filter is not a valid device query: "+ferry.ErrorMessage(err), err)
	}
	return cond, nil
}

// validGroupID allows what a device ID allows.
func validGroupID(id string) error {
	if validDeviceID(id) != nil {
		return ferry.Errorf(ferry.EINVALID, "A device group ID has 1 to 128 ASCII letters, digits and - . %% _ * ? ! ( ) , : = @ $ '.")
	}
	return nil
}

func groupNotFound(id string) error {
	return hubErr(http.StatusNotFound, "DeviceGroupNotFound", 404000,
		ferry.Errorf(ferry.ENOTFOUND, "Device group %s not found.", truncateID(id)))
}

// groupConflict names a clash of names in the hub.
func groupConflict(name string, err error) error {
	if ferry.IsCode(err, ferry.ECONFLICT) {
		return hubErr(http.StatusConflict, "DeviceGroupAlreadyExists", 409000,
			ferry.WrapError(ferry.ECONFLICT, fmt.Sprintf("The hub has another device group named %s.", truncateID(name)), err))
	}
	return err
}

// hubGroup reads a group of the hub; a group of another hub is not found.
func hubGroup(r *http.Request, tx ferry.Tx, hub *ferry.Hub, id string) (*ferry.HubDeviceGroup, error) {
	g, err := tx.GetHubDeviceGroup(r.Context(), hub.ID, id)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, groupNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read device group: %w", err)
	}
	return g, nil
}

// matchingGroup reads a hub's group in tx and checks the request's If-Match
// against its etag.
func matchingGroup(r *http.Request, tx ferry.Tx, hub *ferry.Hub, id string) (*ferry.HubDeviceGroup, error) {
	g, err := hubGroup(r, tx, hub, id)
	if err != nil {
		return nil, err
	}
	if !ferry.ETagMatches(ifMatch(r), g.ETag) {
		return nil, ferry.Errorf(ferry.EPRECONDITION, "The etag does not match the device group's.")
	}
	return g, nil
}

// putDeviceGroup serves PUT /api/deviceGroups/{id}: create, or replace with
// If-Match (an etag or *) or when it exists; If-None-Match: * only creates.
func (s *server) putDeviceGroup(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	if err := validGroupID(id); err != nil {
		return err
	}
	var in groupJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return ferry.Errorf(ferry.EINVALID, "The id in the body does not match the one in the URI.")
	}
	cond, err := groupCondition(str(in.Filter))
	if err != nil {
		return err
	}
	name := strings.TrimSpace(str(in.DisplayName))
	if name == "" {
		name = id
	}
	if len(name) > 200 {
		return ferry.Errorf(ferry.EINVALID, "A device group's displayName has at most 200 characters.")
	}
	match, noneMatch := ifMatch(r), r.Header.Get("If-None-Match")
	ctx := r.Context()
	var g *ferry.HubDeviceGroup
	err = s.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		old, err := tx.GetHubDeviceGroup(ctx, hub.ID, id)
		switch {
		case ferry.IsCode(err, ferry.ENOTFOUND):
			if match != "" {
				return ferry.Errorf(ferry.EPRECONDITION, "The device group %s does not exist, so no etag matches.", id)
			}
			g = &ferry.HubDeviceGroup{ID: id, HubID: hub.ID, Name: name, Description: str(in.Description), Query: cond, CreatedAt: s.now()}
			return groupConflict(name, tx.CreateHubDeviceGroup(ctx, g))
		case err != nil:
			return fmt.Errorf("read device group: %w", err)
		case noneMatch == "*":
			return ferry.Errorf(ferry.EPRECONDITION, "The device group %s exists already.", id)
		case !ferry.ETagMatches(match, old.ETag):
			return ferry.Errorf(ferry.EPRECONDITION, "The etag does not match the device group's.")
		}
		g = old
		g.Name, g.Description, g.Query = name, str(in.Description), cond
		return groupConflict(name, tx.UpdateHubDeviceGroup(ctx, g, old.ETag))
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "device group written", "hub_id", hub.ID, "group_id", id, "caller", ferry.CallerFromContext(ctx).Name())
	return writeJSON(w, http.StatusOK, g.ETag, deviceGroupOut(g))
}

// patchDeviceGroup serves PATCH /api/deviceGroups/{id}: the fields sent replace
// the group's, the others stay.
func (s *server) patchDeviceGroup(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	var in groupJSON
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return ferry.Errorf(ferry.EINVALID, "The id in the body does not match the one in the URI.")
	}
	var cond string
	if in.Filter != nil {
		var err error
		if cond, err = groupCondition(*in.Filter); err != nil {
			return err
		}
	}
	if in.DisplayName != nil && (strings.TrimSpace(*in.DisplayName) == "" || len(*in.DisplayName) > 200) {
		return ferry.Errorf(ferry.EINVALID, "A device group's displayName has 1 to 200 characters.")
	}
	ctx := r.Context()
	var g *ferry.HubDeviceGroup
	err := s.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		old, err := matchingGroup(r, tx, hub, id)
		if err != nil {
			return err
		}
		g = old
		if in.DisplayName != nil {
			g.Name = strings.TrimSpace(*in.DisplayName)
		}
		if in.Description != nil {
			g.Description = *in.Description
		}
		if in.Filter != nil {
			g.Query = cond
		}
		return groupConflict(g.Name, tx.UpdateHubDeviceGroup(ctx, g, old.ETag))
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "device group updated", "hub_id", hub.ID, "group_id", id, "caller", ferry.CallerFromContext(ctx).Name())
	return writeJSON(w, http.StatusOK, g.ETag, deviceGroupOut(g))
}

func (s *server) getDeviceGroup(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	g, err := hubGroup(r, s.cfg.Store, hub, r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, g.ETag, deviceGroupOut(g))
}

func (s *server) deleteDeviceGroup(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	id := r.PathValue("id")
	ctx := r.Context()
	err := s.cfg.Store.WithTx(ctx, func(tx ferry.Tx) error {
		if _, err := matchingGroup(r, tx, hub, id); err != nil {
			return err
		}
		return tx.DeleteHubDeviceGroup(ctx, hub.ID, id)
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "device group deleted", "hub_id", hub.ID, "group_id", id, "caller", ferry.CallerFromContext(ctx).Name())
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listDeviceGroups serves GET /api/deviceGroups: the hub's groups by name.
func (s *server) listDeviceGroups(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	gs, err := s.cfg.Store.ListHubDeviceGroups(r.Context(), hub.ID)
	if err != nil {
		return fmt.Errorf("list device groups: %w", err)
	}
	out := listJSON[groupJSON]{Value: make([]groupJSON, 0, len(gs))}
	for _, g := range gs {
		out.Value = append(out.Value, deviceGroupOut(g))
	}
	return writeJSON(w, http.StatusOK, "", out)
}

// groupDevices serves GET /api/deviceGroups/{id}/devices: the devices the
// group's filter matches now, in device-ID order, paged by $top and
// nextLink.
func (s *server) groupDevices(w http.ResponseWriter, r *http.Request, hub *ferry.Hub) error {
	g, err := hubGroup(r, s.cfg.Store, hub, r.PathValue("id"))
	if err != nil {
		return err
	}
	where, err := hubquery.ParseCondition(g.Query)
	if err != nil {
		return fmt.Errorf("device group %s query: %w", g.ID, err)
	}
	top, err := topParam(r)
	if err != nil {
		return err
	}
	docs, next, err := s.matchTwins(r, hub, where, top, r.URL.Query().Get("$skipToken"))
	if err != nil {
		return err
	}
	out := listJSON[groupDeviceJSON]{Value: make([]groupDeviceJSON, 0, len(docs))}
	for _, d := range docs {
		doc := d.(map[string]any)
		id, _ := doc["deviceId"].(string)
		etag, _ := doc["deviceEtag"].(string)
		status, _ := doc["status"].(string)
		model, _ := doc["modelId"].(string)
		conn, _ := doc["connectionState"].(string)
		if s.cfg.Hubs != nil {
			// The store learns of connections in batches; the hub knows now.
			conn = string(ferry.Disconnected)
			if s.cfg.Hubs.Connected(hub.ID, id) {
				conn = string(ferry.Connected)
			}
		}
		out.Value = append(out.Value, groupDeviceJSON{ID: id, ETag: etag, Enabled: status == string(ferry.DeviceEnabled),
			Template: model, ConnectionState: conn})
	}
	out.NextLink = nextLink(r, next)
	return writeJSON(w, http.StatusOK, "", out)
}

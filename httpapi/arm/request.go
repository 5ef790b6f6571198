package arm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/ferry-iot/ferry"
)

// MaxBodyBytes bounds request bodies. Image uploads carry base64 images,
// so the bound is generous.
const MaxBodyBytes = 64 << 20

// CheckAPIVersion returns MissingApiVersionParameter when the request has
// no api-version, and InvalidApiVersionParameter when it is not one of
// supported.
func CheckAPIVersion(r *http.Request, supported ...string) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return NewError(ferry.EINVALID, CodeMissingAPIVersion,
			"The api-version query parameter (?api-version=) is required for all requests.").WithTarget("api-version")
	}
	if !slices.Contains(supported, v) {
		return Errorf(ferry.EINVALID, CodeInvalidAPIVersion,
			"The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(supported, ",")).WithTarget("api-version")
	}
	return nil
}

// Decode reads a JSON request body into v. An empty body is an error when
// required, and leaves v untouched otherwise. Malformed JSON and values of
// the wrong type give InvalidRequestContent with the property path.
func Decode(r *http.Request, v any, required bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return InvalidContent("", "The request content is larger than %d bytes.", MaxBodyBytes)
		}
		return InvalidContent("", "The request content could not be read.")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if required {
			return InvalidContent("", "The request content was invalid and could not be deserialized: the request body is required.")
		}
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			path := te.Field
			return InvalidContent(path, "The request content was invalid and could not be deserialized: the value of '%s' must be of type %s, not %s.", path, jsonType(te.Type.Kind().String()), te.Value)
		case errors.As(err, &se):
			return InvalidContent("", "The request content was invalid and could not be deserialized: malformed JSON at offset %d.", se.Offset)
		}
		return InvalidContent("", "The request content was invalid and could not be deserialized: %s.", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "map", "struct", "ptr":
		return "object"
	}
	return "number"
}

// Required returns an InvalidRequestContent error for a missing property.
func Required(path string) error {
	return InvalidContent(path, "The request content was invalid: the required property '%s' is missing.", path)
}

// Enum checks that value, when set, is one of allowed (case-insensitive,
// as ARM compares enums) and returns its canonical spelling. Returns
// InvalidRequestContent naming the allowed values otherwise.
func Enum(path, value string, allowed ...string) (string, error) {
	if value == "" {
		return "", nil
	}
	for _, a := range allowed {
		if strings.EqualFold(a, value) {
			return a, nil
		}
	}
	return "", InvalidContent(path, "The value '%s' of property '%s' is not valid. Allowed values are: %s.", value, path, strings.Join(allowed, ", "))
}

// CheckName returns InvalidResourceName unless name matches pattern.
func CheckName(name string, pattern *regexp.Regexp) error {
	if !pattern.MatchString(name) {
		return InvalidName(name, pattern.String())
	}
	return nil
}

// IfMatch returns the request's If-Match value, unquoted.
func IfMatch(r *http.Request) string {
	return strings.Trim(strings.TrimSpace(r.Header.Get("If-Match")), `"`)
}

// SetETag writes an ETag header (quoted) when tag is not empty.
func SetETag(w http.ResponseWriter, tag string) {
	if tag != "" {
		w.Header().Set("ETag", fmt.Sprintf("%q", tag))
	}
}

// CheckPutConditions applies a PUT's conditional headers, given whether the
// resource exists: "If-None-Match: *" refuses to replace, and an If-Match
// other than "*" refuses to create. Returns PreconditionFailed (412). An
// If-Match on an existing resource is left to the store's ETag check.
func CheckPutConditions(r *http.Request, exists bool) error {
	if exists && strings.TrimSpace(r.Header.Get("If-None-Match")) == "*" {
		return NewError(ferry.EPRECONDITION, CodePreconditionFailed, "The resource exists and If-None-Match is '*'.")
	}
	if m := IfMatch(r); !exists && m != "" {
		return NewError(ferry.EPRECONDITION, CodePreconditionFailed, "The resource does not exist and If-Match is set.")
	}
	return nil
}

// Package arm is the plumbing every ARM-shaped resource provider of Ferry
// shares: ARM error JSON, the api-version check, request body decoding with
// InvalidRequestContent errors, resource envelopes and systemData, paging
// with nextLink and $skipToken, long-running operation headers and status
// endpoints backed by ferry.OperationStore, the authorization check with
// ARM's AuthorizationFailed wording, and an audit record of every call.
//
// A provider builds a Server on its ServeMux and registers each operation
// with Server.Handle; handlers return errors and Render writes them.
package arm

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// ARM error codes Ferry uses.
const (
	CodeResourceNotFound           = "ResourceNotFound"
	CodeInvalidResourceName        = "InvalidResourceName"
	CodeAuthorizationFailed        = "AuthorizationFailed"
	CodeInvalidAuthenticationToken = "InvalidAuthenticationToken"
	CodeConflict                   = "Conflict"
	CodePreconditionFailed         = "PreconditionFailed"
	CodeMissingAPIVersion          = "MissingApiVersionParameter"
	CodeInvalidAPIVersion          = "InvalidApiVersionParameter"
	CodeInvalidRequestContent      = "InvalidRequestContent"
	CodeBadRequest                 = "BadRequest"
	CodeTooManyRequests            = "TooManyRequests"
	CodeGatewayTimeout             = "GatewayTimeout"
	CodeInternalServerError        = "InternalServerError"
	CodeOperationNotFound          = "OperationNotFound"
)

// ErrorDetail is the ARM common-types ErrorDetail.
type ErrorDetail struct {
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Target  string        `json:"target,omitempty"`
	Details []ErrorDetail `json:"details"`
}

// ErrorResponse is the ARM common-types ErrorResponse body.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// Error is an error with a specific ARM code. It wraps a *ferry.Error so
// that ferry.ErrorCode and ferry.ErrorMessage still work on it.
type Error struct {
	Code   string // ARM code, e.g. "InvalidResourceName"
	Target string // the offending parameter or property, if any
	status int    // overrides the status of the domain code when set
	err    *ferry.Error
}

// NewError returns an ARM error with the given domain code (which sets the
// HTTP status), ARM code and showable message.
func NewError(ferryCode, armCode, message string) *Error {
	return &Error{Code: armCode, err: &ferry.Error{Code: ferryCode, Message: message}}
}

// Errorf is NewError with a formatted message.
func Errorf(ferryCode, armCode, format string, args ...any) *Error {
	return NewError(ferryCode, armCode, fmt.Sprintf(format, args...))
}

// WithTarget returns e with its target set.
func (e *Error) WithTarget(target string) *Error {
	c := *e
	c.Target = target
	return &c
}

// WithStatus returns e answered with an HTTP status of its own, for the few
// ARM errors no domain code maps to (405 MethodNotAllowed).
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.status = status
	return &c
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.err.Message }

// Unwrap returns the domain error.
func (e *Error) Unwrap() error { return e.err }

// Status returns the HTTP status of the error.
func (e *Error) Status() int {
	if e.status != 0 {
		return e.status
	}
	return httpapi.StatusCode(e.err.Code)
}

// Code returns the ARM code and HTTP status for a domain error code.
func Code(ferryCode string) (string, int) {
	status := httpapi.StatusCode(ferryCode)
	switch ferryCode {
	case ferry.EINVALID:
		return CodeBadRequest, status
	case ferry.ENOTFOUND:
		return CodeResourceNotFound, status
	case ferry.ECONFLICT:
		return CodeConflict, status
	case ferry.EPRECONDITION:
		return CodePreconditionFailed, status
	case ferry.EUNAUTHORIZED:
		return CodeInvalidAuthenticationToken, status
	case ferry.EFORBIDDEN:
		return CodeAuthorizationFailed, status
	case ferry.ETHROTTLED:
		return CodeTooManyRequests, status
	case ferry.ETIMEOUT:
		return CodeGatewayTimeout, status
	}
	return CodeInternalServerError, http.StatusInternalServerError
}

// Detail returns the ARM error detail and HTTP status of err.
func Detail(err error) (ErrorDetail, int) {
	var ae *Error
	if errors.As(err, &ae) {
		return ErrorDetail{Code: ae.Code, Message: ae.err.Message, Target: ae.Target, Details: []ErrorDetail{}}, ae.Status()
	}
	code, status := Code(ferry.ErrorCode(err))
	return ErrorDetail{Code: code, Message: ferry.ErrorMessage(err), Details: []ErrorDetail{}}, status
}

// Render writes err as ARM error JSON. It is an httpapi.ErrorRenderer.
func Render(w http.ResponseWriter, r *http.Request, err error) {
	d, status := Detail(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "10")
	}
	_ = httpapi.WriteJSON(w, status, ErrorResponse{Error: d})
}

var _ httpapi.ErrorRenderer = Render

// NotFound returns ARM's ResourceNotFound error for a resource ID.
func NotFound(id ferry.ResourceID) *Error {
	name := id.Provider
	for i := range id.Types {
		name += "/" + id.Types[i] + "/" + id.Names[i]
	}
	return Errorf(ferry.ENOTFOUND, CodeResourceNotFound,
		"The Resource '%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", name, id.ResourceGroup)
}

// InvalidName returns ARM's InvalidResourceName error.
func InvalidName(name, pattern string) *Error {
	return Errorf(ferry.EINVALID, CodeInvalidResourceName,
		"The resource name '%s' is invalid. It must match the pattern '%s'.", name, pattern).WithTarget("name")
}

// InvalidContent returns an InvalidRequestContent error about a property.
func InvalidContent(target, format string, args ...any) *Error {
	return Errorf(ferry.EINVALID, CodeInvalidRequestContent, format, args...).WithTarget(target)
}

// Forbidden returns ARM's AuthorizationFailed error.
func Forbidden(c *ferry.Caller, action, scope string) *Error {
	return Errorf(ferry.EFORBIDDEN, CodeAuthorizationFailed,
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		c.Name(), c.ID(), action, scope)
}

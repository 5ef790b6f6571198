package ferry

import (
	"errors"
	"fmt"
)

// Error codes. Each surface maps them to its own shape: ARM error JSON, legacy
// error codes, IoT Hub and DPS status codes, MQTT reason codes, CLI exit codes.
const (
	EINVALID      = "invalid"      // the request is malformed or breaks a rule
	ENOTFOUND     = "not_found"    // the resource does not exist (or the caller may not know it does)
	ECONFLICT     = "conflict"     // the resource exists, or its state forbids the change
	EPRECONDITION = "precondition" // an If-Match etag did not match
	EUNAUTHORIZED = "unauthorized" // the caller is not authenticated
	EFORBIDDEN    = "forbidden"    // the caller is authenticated but not allowed
	ETHROTTLED    = "throttled"    // a quota or rate limit was hit; try again later
	ETIMEOUT      = "timeout"      // the far side (a device, a peer) did not answer in time
	EINTERNAL     = "internal"     // anything else; the detail is logged, never shown
)

// Error is the one error type of the domain. Message is safe to show to the
// caller; internal detail lives in the wrapped Err and is logged at the edge.
type Error struct {
	Code    string // one of the E* codes
	Message string // safe to show to a caller
	Err     error  // optional cause, never shown
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("ferry error: code=%s message=%s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("ferry error: code=%s message=%s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted, showable message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WrapError returns an *Error with a code and message that keeps err as the
// hidden cause.
func WrapError(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the showable message of the first *Error in err's
// chain, and a generic message for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "An internal error has occurred."
}

// IsCode reports whether err carries the given code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }

package legacy

import (
	"errors"
	"net/http"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// Legacy error codes (the PAPI ErrorResponse Code, sphere-surfaces.md §2.1).
const (
	CodeOperationFailed         = 0
	CodeTenantInMigration       = 1
	CodeTenantMigrationRequired = 2
	CodeClientUpdateRequired    = 3
	CodeInternalServerError     = 4
	CodeBadRequest              = 5
	CodeForbidden               = 6
	CodeConflict                = 7
	CodeNotFound                = 8
)

// ErrorResponse is the legacy surface's error body.
type ErrorResponse struct {
	Code    int
	Message string
}

// Error is an error with its legacy code and HTTP status, for refusals the
// domain codes do not tell apart (a paused or blocked tenant).
type Error struct {
	Status int
	Code   int
	err    *ferry.Error
}

// Error implements the error interface.
func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns the domain error, so that ferry.ErrorCode sees its code.
func (e *Error) Unwrap() error { return e.err }

// codeOf maps a domain error code to the legacy code and HTTP status. An
// unauthenticated caller gets 401 with Forbidden: PAPI has no code of its
// own for a missing token.
func codeOf(code string) (int, int) {
	switch code {
	case ferry.EINVALID:
		return CodeBadRequest, http.StatusBadRequest
	case ferry.EUNAUTHORIZED:
		return CodeForbidden, http.StatusUnauthorized
	case ferry.EFORBIDDEN:
		return CodeForbidden, http.StatusForbidden
	case ferry.ENOTFOUND:
		return CodeNotFound, http.StatusNotFound
	case ferry.ECONFLICT:
		return CodeConflict, http.StatusConflict
	case ferry.EPRECONDITION:
		return CodeConflict, http.StatusPreconditionFailed
	case ferry.ETHROTTLED:
		return CodeOperationFailed, http.StatusTooManyRequests
	case ferry.ETIMEOUT:
		return CodeOperationFailed, http.StatusGatewayTimeout
	}
	return CodeInternalServerError, http.StatusInternalServerError
}

// Detail returns the legacy body and HTTP status of err.
func Detail(err error) (ErrorResponse, int) {
	var le *Error
	if errors.As(err, &le) {
		return ErrorResponse{Code: le.Code, Message: le.err.Message}, le.Status
	}
	code, status := codeOf(ferry.ErrorCode(err))
	return ErrorResponse{Code: code, Message: ferry.ErrorMessage(err)}, status
}

// Render writes err as a legacy ErrorResponse.
func Render(w http.ResponseWriter, r *http.Request, err error) {
	body, status := Detail(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	_ = httpapi.WriteJSON(w, status, body)
}

// badRequest returns an EINVALID error with a showable message.
func badRequest(format string, args ...any) error {
	return ferry.Errorf(ferry.EINVALID, format, args...)
}

// notFound returns an ENOTFOUND error naming what was not found.
func notFound(what string) error {
	return ferry.Errorf(ferry.ENOTFOUND, "The %s was not found in the tenant.", what)
}

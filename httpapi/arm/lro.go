package arm

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// OperationLocation is the location segment of operation status URLs.
// Ferry's resources live in one place, which ARM calls "global".
const OperationLocation = "global"

// RetryAfterSeconds is the Retry-After sent with 202 responses.
const RetryAfterSeconds = 1

// OperationStatus is the body of an Azure-AsyncOperation status URL.
type OperationStatus struct {
	ID         string       `json:"id"`
	Name       string       `json:"name"`
	ResourceID string       `json:"resourceId,omitempty"`
	Status     string       `json:"status"` // InProgress, Succeeded, Failed, Canceled
	StartTime  *time.Time   `json:"startTime,omitempty"`
	EndTime    *time.Time   `json:"endTime,omitempty"`
	Error      *ErrorDetail `json:"error,omitempty"`
}

// Operation status values, as azcore's pollers read them.
const (
	StatusInProgress = "InProgress"
	StatusSucceeded  = "Succeeded"
	StatusFailed     = "Failed"
	StatusCanceled   = "Canceled"
)

// StatusOf returns the ARM status of an operation.
func StatusOf(op *ferry.Operation) string {
	switch op.State {
	case ferry.OpComplete:
		return StatusSucceeded
	case ferry.OpFailed, ferry.OpCompleteWithErrors:
		return StatusFailed
	}
	return StatusInProgress
}

// operationError returns the error a failed operation carries.
func operationError(op *ferry.Operation) error {
	code := op.ErrorCode
	if code == "" {
		code = ferry.EINTERNAL
	}
	msg := op.ErrorMessage
	if msg == "" {
		msg = "The operation failed."
	}
	return &ferry.Error{Code: code, Message: msg}
}

// RunOperation records op in store as in progress, runs fn, and records its
// outcome: complete, or failed with fn's error code and showable message.
// A failure of fn is reported through the operation, as ARM does, and not
// returned, except for internal errors (which the caller should log and
// answer 500) and failures to record the outcome.
func RunOperation(ctx context.Context, store ferry.OperationStore, now func() time.Time, op *ferry.Operation, fn func(ctx context.Context) error) error {
	if op.ID == "" {
		op.ID = ferry.NewUUID()
	}
	t := now().UTC()
	op.CreatedAt, op.StartedAt, op.State = t, t, ferry.OpInProgress
	if op.Type == 0 && op.Name != "" {
		op.Type = ferry.OpARM
	}
	if err := store.CreateOperation(ctx, op); err != nil {
		return fmt.Errorf("run operation: %w", err)
	}
	ferr := fn(ctx)
	op.CompletedAt = now().UTC()
	op.State = ferry.OpComplete
	if ferr != nil {
		op.State = ferry.OpFailed
		op.ErrorCode, op.ErrorMessage = ferry.ErrorCode(ferr), ferry.ErrorMessage(ferr)
	}
	if err := store.UpdateOperation(context.WithoutCancel(ctx), op); err != nil {
		return fmt.Errorf("run operation: %w", err)
	}
	if ferry.ErrorCode(ferr) == ferry.EINTERNAL {
		return ferr
	}
	return nil
}

// OperationStatusURL returns the Azure-AsyncOperation URL of an operation.
func (s *Server) OperationStatusURL(r *http.Request, opID string) string {
	return s.operationURL(r, "operationStatuses", opID)
}

// OperationResultURL returns the Location URL of an operation.
func (s *Server) OperationResultURL(r *http.Request, opID string) string {
	return s.operationURL(r, "operationResults", opID)
}

func (s *Server) operationURL(r *http.Request, kind, opID string) string {
	q := url.Values{"api-version": {r.URL.Query().Get("api-version")}}
	u := url.URL{Scheme: Scheme(r), Host: r.Host,
		Path:     "/providers/" + s.cfg.Provider + "/locations/" + OperationLocation + "/" + kind + "/" + opID,
		RawQuery: q.Encode()}
	return u.String()
}

// Accepted answers 202 for a long-running operation with its
// Azure-AsyncOperation, Location and Retry-After headers, and no body.
func (s *Server) Accepted(w http.ResponseWriter, r *http.Request, op *ferry.Operation) error {
	s.setOperationHeaders(w, r, op.ID, true)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// WriteAsync answers status (200 or 201) with body and the operation's
// Azure-AsyncOperation header, for PUTs whose final state is read through
// the async operation.
func (s *Server) WriteAsync(w http.ResponseWriter, r *http.Request, status int, op *ferry.Operation, body any) error {
	if op != nil {
		s.setOperationHeaders(w, r, op.ID, false)
	}
	return httpapi.WriteJSON(w, status, body)
}

func (s *Server) setOperationHeaders(w http.ResponseWriter, r *http.Request, opID string, location bool) {
	w.Header().Set("Azure-AsyncOperation", s.OperationStatusURL(r, opID))
	if location {
		w.Header().Set("Location", s.OperationResultURL(r, opID))
	}
	w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
}

// handleOperationStatus serves the Azure-AsyncOperation URL.
func (s *Server) handleOperationStatus(w http.ResponseWriter, r *http.Request) error {
	op, err := s.authorizedOperation(r)
	if err != nil {
		return err
	}
	st := OperationStatus{
		ID:   "/providers/" + s.cfg.Provider + "/locations/" + OperationLocation + "/operationStatuses/" + op.ID,
		Name: op.ID, ResourceID: op.ResourceID, Status: StatusOf(op),
		StartTime: timePtr(op.StartedAt), EndTime: timePtr(op.CompletedAt),
	}
	if st.Status == StatusFailed {
		d, _ := Detail(operationError(op))
		st.Error = &d
	}
	if st.Status == StatusInProgress {
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
	}
	return httpapi.WriteJSON(w, http.StatusOK, st)
}

// handleOperationResult serves the Location URL: 202 while the operation
// runs, its error when it failed, 204 when it succeeded.
func (s *Server) handleOperationResult(w http.ResponseWriter, r *http.Request) error {
	op, err := s.authorizedOperation(r)
	if err != nil {
		return err
	}
	switch StatusOf(op) {
	case StatusInProgress:
		w.Header().Set("Location", s.OperationResultURL(r, op.ID))
		w.Header().Set("Retry-After", fmt.Sprint(RetryAfterSeconds))
		w.WriteHeader(http.StatusAccepted)
		return nil
	case StatusFailed:
		return operationError(op)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authorizedOperation loads the operation of the request and checks that
// the caller may read operation statuses over the resource it concerns.
func (s *Server) authorizedOperation(r *http.Request) (*ferry.Operation, error) {
	id := r.PathValue("operationId")
	notFound := Errorf(ferry.ENOTFOUND, CodeOperationNotFound, "The operation '%s' was not found.", id)
	if s.cfg.Operations == nil || !ferry.IsUUID(id) {
		return nil, notFound
	}
	op, err := s.cfg.Operations.GetOperation(r.Context(), id)
	if ferry.IsCode(err, ferry.ENOTFOUND) {
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("get operation: %w", err)
	}
	scope := op.ResourceID
	if scope == "" {
		scope = "/"
	}
	c := CallFrom(r.Context())
	if c != nil {
		c.ResourceID = scope
		c.CatalogID = op.CatalogID
	}
	if err := s.Authorize(r.Context(), s.cfg.Provider+"/locations/operationStatuses/read", scope); err != nil {
		return nil, err
	}
	return op, nil
}

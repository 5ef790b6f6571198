package hubsvc

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferry-iot/ferry"
	"github.com/ferry-iot/ferry/httpapi"
)

// apiError carries the status and Azure error code a handler chose for an
// error; the renderers fall back to a table by ferry error code.
type apiError struct {
	status int
	name   string // IoT Hub's error code name, e.g. DeviceNotFound
	number int    // the six-digit code, e.g. 404001
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func hubErr(status int, name string, number int, err error) error {
	return &apiError{status: status, name: name, number: number, err: err}
}

func dpsErr(status, number int, err error) error {
	return &apiError{status: status, number: number, err: err}
}

// hubCodes maps ferry error codes to IoT Hub's defaults.
var hubCodes = map[string]struct {
	name   string
	number int
}{
	ferry.EINVALID:      {"ArgumentInvalid", 400004},
	ferry.EUNAUTHORIZED: {"IotHubUnauthorizedAccess", 401002},
	ferry.EFORBIDDEN:    {"Forbidden", 403000},
	ferry.ENOTFOUND:     {"DeviceNotFound", 404001},
	ferry.ECONFLICT:     {"DeviceAlreadyExists", 409001},
	ferry.EPRECONDITION: {"PreconditionFailed", 412002},
	ferry.ETHROTTLED:    {"ThrottlingException", 429001},
	ferry.ETIMEOUT:      {"GatewayTimeout", 504101},
	ferry.EINTERNAL:     {"ServerError", 500001},
}

// classify returns the status, name and number of err.
func classify(err error) (status int, name string, number int) {
	var ae *apiError
	if errors.As(err, &ae) {
		status, name, number = ae.status, ae.name, ae.number
	}
	if ferry.IsDeviceNotOnline(err) && name == "" {
		return http.StatusNotFound, "DeviceNotOnline", 404103
	}
	if ferry.IsMethodTimeout(err) && name == "" {
		return http.StatusGatewayTimeout, "GatewayTimeout", 504101
	}
	code := ferry.ErrorCode(err)
	def := hubCodes[code]
	if status == 0 {
		status = httpapi.StatusCode(code)
	}
	if name == "" {
		name = def.name
	}
	if number == 0 {
		number = def.number
	}
	return status, name, number
}

// renderHub writes an error the way IoT Hub does:
// {"Message":"ErrorCode:DeviceNotFound;...","ExceptionMessage":"Tracking ID:..."}
// with the code in the iothub-errorcode header. The service SDKs read the
// code from the text before the first ';' of Message.
func (s *server) renderHub(w http.ResponseWriter, r *http.Request, err error) {
	status, name, number := classify(err)
	msg := strings.ReplaceAll(ferry.ErrorMessage(err), ";", ",")
	tracking := httpapi.CorrelationID(r.Context())
	if tracking == "" {
		tracking = ferry.NewUUID()
	}
	w.Header().Set("iothub-errorcode", name)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "SharedAccessSignature")
	}
	_ = httpapi.WriteJSON(w, status, map[string]any{
		"Message":          "ErrorCode:" + name + ";" + msg,
		"ExceptionMessage": fmt.Sprintf("Tracking ID:%s-TimeStamp:%s", tracking, timeString(s.now())),
		"errorCode":        number,
	})
}

// renderDPS writes an error the way the Device Provisioning Service does:
// {"errorCode":404201,"trackingId":"...","message":"...","timestampUtc":"..."}.
func (s *server) renderDPS(w http.ResponseWriter, r *http.Request, err error) {
	status, _, number := classify(err)
	var ae *apiError
	if !errors.As(err, &ae) || ae.number == 0 {
		number = dpsNumbers[status]
	}
	tracking := httpapi.CorrelationID(r.Context())
	if tracking == "" {
		tracking = ferry.NewUUID()
	}
	_ = httpapi.WriteJSON(w, status, map[string]any{
		"errorCode":    number,
		"trackingId":   tracking,
		"message":      ferry.ErrorMessage(err),
		"timestampUtc": timeString(s.now()),
	})
}

// dpsNumbers are DPS's six-digit codes by status.
var dpsNumbers = map[int]int{
	http.StatusBadRequest:          400004,
	http.StatusUnauthorized:        401002,
	http.StatusForbidden:           403000,
	http.StatusNotFound:            404201,
	http.StatusConflict:            409201,
	http.StatusPreconditionFailed:  412201,
	http.StatusTooManyRequests:     429001,
	http.StatusInternalServerError: 500000,
	http.StatusGatewayTimeout:      504000,
}

package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Layouts of the timestamps the API emits and accepts.
const (
	// listTimeLayout is used by createdDatetime/modifiedDatetime: fractional
	// seconds of variable width and no zone, as in the docs' examples.
	listTimeLayout = "2006-01-02T15:04:05.999"
	// runTimeLayout is used by ReportDatetime (no zone).
	runTimeLayout = "2006-01-02T15:04:05"
	// queryDateLayout is used by reportdata's startDate and endDate.
	queryDateLayout = "2006-01-02"
	// maxBodyBytes bounds request bodies.
	maxBodyBytes = 1 << 20
)

// apiError is an error the API reports to the client with an HTTP status and
// one element of the envelope's errors array.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, "BadRequest", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) *apiError {
	return &apiError{http.StatusNotFound, "NotFound", fmt.Sprintf(format, args...)}
}

func unauthorized(message string) *apiError {
	return &apiError{http.StatusUnauthorized, "Unauthorized", message}
}

// errorItem is one element of the envelope's errors array. The docs never
// show its shape; {code, message} is the emulator's choice.
type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// envelope is the body of every async endpoint's response. A nil Errors
// encodes as null, an empty one as [] (the docs show both).
type envelope struct {
	Data   any         `json:"data"`
	Errors []errorItem `json:"errors"`
}

// apiHandler serves one method of an async endpoint. It writes the success
// response itself; a returned error is written as an error envelope
// (an *apiError with its status, anything else as 500).
type apiHandler func(w http.ResponseWriter, r *http.Request) error

// route registers the handlers of one async endpoint, keyed by method,
// behind the bearer-token check and fault injection (see Faults). Other methods get 405 with an Allow header.
func (e *Emulator) route(mux *http.ServeMux, pattern string, handlers map[string]apiHandler) {
	methods := make([]string, 0, len(handlers))
	for method, h := range handlers {
		methods = append(methods, method)
		mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := e.checkBearer(r); err != nil {
				writeEnvelopeError(w, err)
				return
			}
			if err := e.apiFault(w, r); err != nil {
				writeEnvelopeError(w, err)
				return
			}
			if err := h(w, r); err != nil {
				writeEnvelopeError(w, err)
			}
		})
	}
	slices.Sort(methods)
	mux.HandleFunc(pattern, methodNotAllowedJSON(methods...))
}

// methodNotAllowedJSON answers 405 with an error envelope.
func methodNotAllowedJSON(allowed ...string) http.HandlerFunc {
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeEnvelopeError(w, &apiError{http.StatusMethodNotAllowed, "MethodNotAllowed",
			fmt.Sprintf("method %s is not allowed; use %s", r.Method, allow)})
	}
}

// writeData writes a success envelope with an empty errors array.
func writeData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, envelope{Data: data, Errors: []errorItem{}})
}

// writeEnvelopeError writes err as an error envelope.
func writeEnvelopeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, "InternalServerError", err.Error()}
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, ae.status, envelope{Errors: []errorItem{{Code: ae.code, Message: ae.message}}})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, fmt.Sprintf("encoding response: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// decodeBody decodes the JSON request body into v. Unknown fields are
// ignored and key matching is case-insensitive (encoding/json's rules), which
// the docs' mixed camelCase/PascalCase examples require. Failures are 400s
// whose message names the offending field where possible.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes)).Decode(v)
	var typeErr *json.UnmarshalTypeError
	var tooLarge *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return badRequest("request body is empty; a JSON object is required")
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return badRequest("%s must be %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &typeErr):
		return badRequest("request body must be %s, not a JSON %s", jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &tooLarge):
		return badRequest("request body exceeds %d bytes", tooLarge.Limit)
	default:
		return badRequest("request body is not valid JSON: %v", err)
	}
}

// jsonKind names the JSON shape expected for Go type t, for error messages.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return "a " + t.String()
	}
}

// pathID parses the integer path parameter name; field names it in errors.
func pathID(r *http.Request, name, field string) (int, error) {
	raw := r.PathValue(name)
	id, err := strconv.Atoi(raw)
	if err != nil || id <= 0 {
		return 0, badRequest("%s %q in the path must be a positive integer", field, raw)
	}
	return id, nil
}

// intField parses a JSON integer that may also arrive as a string holding an
// integer (the docs quote ids in one example). It reports whether the field
// was present; field names it in errors.
func intField(raw json.RawMessage, field string) (int, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		text = string(raw)
	}
	n, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil {
		return 0, true, badRequest("%s must be an integer, got %s", field, raw)
	}
	return n, true, nil
}

package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/reins-oss/reins/incidents"
)

// MaxBody caps every request body (docs/api.md).
const MaxBody = 1 << 20

// statusOf is the one table from a domain error's code to its HTTP status.
// The REST API, the webhooks and the web view all answer with it
// (StatusOf), so one error reads the same on every surface: an invalid
// answer is 422 whether it came as JSON or from a form.
var statusOf = map[string]int{
	incidents.ECONFLICT:     http.StatusConflict,
	incidents.EINVALID:      http.StatusUnprocessableEntity,
	incidents.ENOTFOUND:     http.StatusNotFound,
	incidents.EFORBIDDEN:    http.StatusForbidden,
	incidents.EUNAUTHORIZED: http.StatusUnauthorized,
	incidents.EUNAVAILABLE:  http.StatusServiceUnavailable,
	incidents.EINTERNAL:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for err: its code's, or 500 for an
// error that is not an *incidents.Error (0 for nil).
func StatusOf(err error) int {
	if err == nil {
		return 0
	}
	if st, ok := statusOf[incidents.ErrorCode(err)]; ok {
		return st
	}
	return http.StatusInternalServerError
}

// WriteDomainError answers err as JSON with its mapped status and its
// user-safe message, logging the internal ones once.
func WriteDomainError(w http.ResponseWriter, log *slog.Logger, r *http.Request, err error) {
	status := StatusOf(err)
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteError(w, status, incidents.ErrorMessage(err))
}

// WriteError answers {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}

// WriteJSON answers v as indented JSON with status. nosniff: an error
// message may echo what the caller sent, which must never be read as HTML.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// RequireToken guards a handler with a bearer token compared in constant
// time; an empty token refuses everything, saying which variable to set.
func RequireToken(token, envName string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token == "" {
			WriteError(w, http.StatusUnauthorized, "this API is disabled: set "+envName)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reins"`)
			WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// DecodeJSON reads a JSON request body strictly: JSON content type, at most
// 1 MiB, no unknown fields, one value. It answers the error itself.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		WriteError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			WriteError(w, http.StatusRequestEntityTooLarge, "body larger than 1 MiB")
		case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			WriteError(w, http.StatusBadRequest, "malformed JSON: "+err.Error())
		case errors.As(err, &typ):
			WriteError(w, http.StatusUnprocessableEntity, "field "+typ.Field+" must be "+typ.Type.String())
		default:
			WriteError(w, http.StatusUnprocessableEntity, err.Error())
		}
		return false
	}
	if dec.More() {
		WriteError(w, http.StatusBadRequest, "malformed JSON: more than one value in the body")
		return false
	}
	return true
}

package incidents

import (
	"errors"
	"fmt"
)

// Error codes. The bot maps each to a reply (bot/handler.go), and every HTTP
// surface to a status through one table (integrations/api.StatusOf).
const (
	ECONFLICT     = "conflict"     // 409: the state forbids it (already resolved, already halted)
	EINTERNAL     = "internal"     // 500
	EINVALID      = "invalid"      // 400/422: bad input
	ENOTFOUND     = "not_found"    // 404
	EFORBIDDEN    = "forbidden"    // 403: no kill authority
	EUNAVAILABLE  = "unavailable"  // 503: a dependency is down
	EUNAUTHORIZED = "unauthorized" // 401
)

// Error is a domain error whose Message is safe to show a user.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("reins error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it wraps an *Error, else EINTERNAL (nil: "").
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err, or "Internal error."
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

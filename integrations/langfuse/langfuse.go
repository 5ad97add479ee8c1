// Package langfuse pulls a session's observations from Langfuse's public
// API, for agents whose telemetry goes to Langfuse rather than to reins
// (sessions.source: langfuse). It reads the Observations API v2, the
// real-time read path, filtered by session ID, following meta.cursor, with
// Basic auth (public key, secret key) and honouring 429 Retry-After.
//
// A trimmed page it reads:
//
//	{"data":[{"id":"eee19b7ec3c1b174","traceId":"5b8e…","type":"TOOL",
//	  "name":"execute_tool salesforce.update_record","startTime":"2026-12-06T14:03:22.120Z",
//	  "endTime":"2026-12-06T14:03:22.330Z","level":"ERROR","statusMessage":"SalesforceTimeout",
//	  "metadata":{"attributes":{"gen_ai.tool.name":"salesforce.update_record"}}}],
//	 "meta":{"cursor":"eyJ…"}}
package langfuse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/ownership"
)

// Client pulls sessions from Langfuse.
type Client struct {
	HTTP   *http.Client
	Getenv func(string) string
	// MaxPages bounds one pull (100 observations a page).
	MaxPages int
	// Sleep waits out a Retry-After; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
}

var _ sessions.Puller = (*Client)(nil)

// NewClient returns a Client reading keys through getenv.
func NewClient(getenv func(string) string) *Client {
	return &Client{HTTP: &http.Client{Timeout: 20 * time.Second}, Getenv: getenv, MaxPages: 200, Sleep: sleep}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

const (
	pageSize     = 100
	maxAttempts  = 4
	maxRetryWait = 30 * time.Second
	maxPageBytes = 16 << 20
	fields       = "core,basic,time,model,usage,metadata"
)

// Pull returns the steps of session from the agent's Langfuse project.
func (c *Client) Pull(ctx context.Context, agent *ownership.Agent, session string) ([]sessions.Step, error) {
	lf := agent.Sessions.Langfuse
	if lf.Host == "" {
		return nil, fmt.Errorf("agent %s: sessions.langfuse.host is not set", agent.Name)
	}
	pk, sk := c.Getenv(lf.PublicKeyEnv), c.Getenv(lf.SecretKeyEnv)
	if pk == "" || sk == "" {
		return nil, fmt.Errorf("agent %s: set %s and %s to the Langfuse project's public and secret keys", agent.Name, lf.PublicKeyEnv, lf.SecretKeyEnv)
	}
	filter, _ := json.Marshal([]map[string]string{{"type": "string", "column": "sessionId", "operator": "=", "value": session}})
	var steps []sessions.Step
	cursor := ""
	for page := 0; ; page++ {
		if page == c.MaxPages {
			return nil, fmt.Errorf("session %s has more than %d pages of observations in Langfuse", session, c.MaxPages)
		}
		q := url.Values{"filter": {string(filter)}, "fields": {fields}, "limit": {strconv.Itoa(pageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		body, err := c.get(ctx, lf.Host+"/api/public/v2/observations?"+q.Encode(), pk, sk)
		if err != nil {
			return nil, err
		}
		got, next, err := Decode(body, session, agent.Name)
		if err != nil {
			return nil, err
		}
		steps = append(steps, got...)
		if next == "" || next == cursor {
			return steps, nil
		}
		cursor = next
	}
}

// get fetches one page, retrying 429 and 503 after their Retry-After.
func (c *Client) get(ctx context.Context, u, user, pass string) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(user, pass)
		req.Header.Set("Accept", "application/json")
		res, err := c.HTTP.Do(req)
		if err != nil {
			return nil, fmt.Errorf("ask Langfuse: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, maxPageBytes))
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read Langfuse's answer: %w", err)
		}
		switch {
		case res.StatusCode == http.StatusOK:
			return body, nil
		case (res.StatusCode == http.StatusTooManyRequests || res.StatusCode == http.StatusServiceUnavailable) && attempt < maxAttempts:
			if err := c.Sleep(ctx, retryAfter(res.Header.Get("Retry-After"), attempt)); err != nil {
				return nil, err
			}
		case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
			return nil, fmt.Errorf("Langfuse refused the keys (%d): check the public and secret key variables", res.StatusCode)
		default:
			return nil, fmt.Errorf("Langfuse answered %d: %s", res.StatusCode, sessions.Truncate(strings.TrimSpace(string(body)), 200))
		}
	}
}

// retryAfter reads seconds or an HTTP date; without one it backs off.
func retryAfter(v string, attempt int) time.Duration {
	d := time.Duration(attempt) * time.Second
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		d = time.Duration(s) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), maxRetryWait)
}

// observation is the part of an Observations API v2 item reins reads.
type observation struct {
	ID                string          `json:"id"`
	TraceID           string          `json:"traceId"`
	ParentID          string          `json:"parentObservationId"`
	Type              string          `json:"type"`
	Name              string          `json:"name"`
	StartTime         *time.Time      `json:"startTime"`
	EndTime           *time.Time      `json:"endTime"`
	Level             string          `json:"level"`
	StatusMessage     string          `json:"statusMessage"`
	Model             string          `json:"model"`
	ProvidedModelName string          `json:"providedModelName"`
	UsageDetails      map[string]any  `json:"usageDetails"`
	Usage             map[string]any  `json:"usage"`
	Metadata          json.RawMessage `json:"metadata"`
	Input             json.RawMessage `json:"input"`
}

type page struct {
	Data []json.RawMessage `json:"data"`
	Meta struct {
		Cursor string `json:"cursor"`
	} `json:"meta"`
}

// kinds maps Langfuse observation types onto GenAI operation names.
var kinds = map[string]string{
	"GENERATION": sessions.KindChat, "TOOL": sessions.KindTool, "AGENT": sessions.KindAgent,
	"RETRIEVER": sessions.KindRetrieval, "EMBEDDING": sessions.KindEmbeddings,
}

// Decode reads one page of observations as steps of session and agent, and
// the cursor of the next page ("" at the end). An observation it cannot
// read is skipped; a page it cannot read is an error.
func Decode(body []byte, session, agent string) ([]sessions.Step, string, error) {
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, "", fmt.Errorf("Langfuse's answer is not an observations page: %w", err)
	}
	var out []sessions.Step
	for _, raw := range p.Data {
		var o observation
		if json.Unmarshal(raw, &o) != nil || o.ID == "" || o.StartTime == nil {
			continue
		}
		out = append(out, step(o, session, agent))
	}
	return out, p.Meta.Cursor, nil
}

func step(o observation, session, agent string) sessions.Step {
	st := sessions.Step{Session: session, Agent: agent, SpanID: sessions.Truncate(o.ID, 128),
		TraceID: sessions.Truncate(o.TraceID, 128), ParentID: sessions.Truncate(o.ParentID, 128),
		Name: sessions.Truncate(o.Name, 256), Start: o.StartTime.UTC(),
		Model: sessions.Truncate(firstNonEmpty(o.ProvidedModelName, o.Model), 128)}
	if o.EndTime != nil && o.EndTime.After(*o.StartTime) {
		st.Duration = o.EndTime.Sub(*o.StartTime)
	}
	attrs := attributes(o.Metadata)
	st.Kind = kinds[strings.ToUpper(o.Type)]
	if op, ok := attrs["gen_ai.operation.name"].(string); ok && op != "" {
		st.Kind = strings.ToLower(op)
	}
	if st.Kind == "" {
		st.Kind = sessions.KindOther
	}
	if tool, ok := attrs["gen_ai.tool.name"].(string); ok && tool != "" {
		st.Tool = tool
	} else if st.Kind == sessions.KindTool {
		st.Tool = strings.TrimPrefix(o.Name, "execute_tool ")
	}
	st.Tool = sessions.Truncate(st.Tool, 256)
	if st.Tool != "" {
		st.ArgsHash = argsHash(attrs, o.Input)
	}
	usage := o.UsageDetails
	if len(usage) == 0 {
		usage = o.Usage
	}
	st.InputTokens, st.OutputTokens = count(usage, "input"), count(usage, "output")
	if strings.EqualFold(o.Level, "ERROR") {
		st.Error = true
		st.ErrorType = sessions.Truncate(firstNonEmpty(stringOf(attrs["error.type"]), o.StatusMessage, "error"), 256)
	}
	return st
}

// attributes are the OTel span attributes Langfuse keeps in metadata.
func attributes(raw json.RawMessage) map[string]any {
	var m struct {
		Attributes map[string]any `json:"attributes"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m.Attributes
}

func count(m map[string]any, key string) int64 {
	switch v := m[key].(type) {
	case float64:
		if v >= 0 && v < 1e15 {
			return int64(v)
		}
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			return n
		}
	}
	return 0
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// argsHash identifies a tool call's arguments for the loop SLA without
// keeping them: the span's gen_ai.tool.call.arguments, else the
// observation's input. "" when there are none.
func argsHash(attrs map[string]any, input json.RawMessage) string {
	var b []byte
	if v, ok := attrs["gen_ai.tool.call.arguments"].(string); ok {
		b = []byte(v)
	} else if len(input) > 0 && string(input) != "null" {
		b = input
	} else {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

package otlp_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/reins-oss/reins/incidents/sessions"
	"github.com/reins-oss/reins/integrations/otlp"
	"github.com/reins-oss/reins/ownership"
)

var supportBot = &ownership.Agent{Name: "support-bot", Aliases: []string{"support-bot-v2"}}

func resolve(name string) *ownership.Agent {
	if strings.EqualFold(name, "support-bot") || strings.EqualFold(name, "support-bot-v2") {
		return supportBot
	}
	return nil
}

func load(t testing.TB, name string) otlp.Result {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(b); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	return otlp.Map(req.Traces(), resolve)
}

var t0 = time.Unix(0, 1765029802000000000).UTC()

// brief is the part of a step each style must get right.
type brief struct {
	Session, Kind, Tool, Model string
	In, Out                    int64
	Error                      bool
	ErrorType                  string
}

func briefs(steps []sessions.Step) []brief {
	var out []brief
	for _, s := range steps {
		out = append(out, brief{s.Session, s.Kind, s.Tool, s.Model, s.InputTokens, s.OutputTokens, s.Error, s.ErrorType})
	}
	return out
}

func TestMapStyles(t *testing.T) {
	for _, tc := range []struct {
		file      string
		want      []brief
		wrongType map[string]int
	}{
		{"genai_current.json", []brief{
			{"s-8812", "invoke_agent", "", "", 0, 0, false, ""},
			{"s-8812", "chat", "", "gpt-4.1-2025-04-14", 1000, 200, false, ""},
			{"s-8812", "execute_tool", "salesforce.update_record", "", 0, 0, true, "SalesforceTimeout"},
		}, nil},
		{"genai_1_36.json", []brief{
			{"s-old", "other", "", "", 0, 0, false, ""},
			{"s-old", "chat", "", "gpt-4.1", 300, 30, false, ""},
			{"s-old", "execute_tool", "sendgrid.send_email", "", 0, 0, false, ""},
		}, nil},
		{"openinference.json", []brief{
			{"s-oi", "chat", "", "gpt-4.1-mini", 500, 50, false, ""},
			{"s-oi", "execute_tool", "crm_update_record", "", 0, 0, false, ""},
			{"s-oi", "retrieval", "", "", 0, 0, false, ""},
		}, nil},
		{"langfuse.json", []brief{
			// A count sent as a string holding a number counts
			// (OpenLLMetry sends them so).
			{"s-lf", "chat", "", "gpt-4.1", 12, 7, false, ""},
		}, nil},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".json"), func(t *testing.T) {
			res := load(t, tc.file)
			if got := briefs(res.Steps); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("steps:\n got %+v\nwant %+v", got, tc.want)
			}
			if res.Rejected != 0 || len(res.Dropped) != 0 {
				t.Errorf("rejected %d, dropped %v: want none", res.Rejected, res.Dropped)
			}
			if len(tc.wrongType) > 0 && !reflect.DeepEqual(res.WrongType, tc.wrongType) {
				t.Errorf("wrong types counted %v, want %v", res.WrongType, tc.wrongType)
			}
			for _, st := range res.Steps {
				if st.Agent != "support-bot" || st.SpanID == "" || st.Start.Before(t0) || st.Duration <= 0 {
					t.Errorf("step %+v: want agent, span ID, start and duration", st)
				}
			}
		})
	}
}

func TestMapNoContentUnlessCaptured(t *testing.T) {
	res := load(t, "genai_current.json")
	for _, st := range res.Steps {
		if st.Content != "" {
			t.Errorf("content kept without capture_content: %q", st.Content)
		}
	}
}

func TestMapCapturesContentWhenAsked(t *testing.T) {
	b, _ := os.ReadFile("testdata/genai_current.json")
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	sp := req.Traces().ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1)
	sp.Attributes().PutStr("gen_ai.input.messages", strings.Repeat("refund order 4411 ", 20))
	capturing := &ownership.Agent{Name: "support-bot", Sessions: ownership.SessionSettings{CaptureContent: true, ContentLimit: 40}}
	res := otlp.Map(req.Traces(), func(string) *ownership.Agent { return capturing })
	got := res.Steps[1].Content
	if !strings.HasPrefix(got, "gen_ai.input.messages: refund order") || len(got) > 40 || !strings.HasSuffix(got, "…") {
		t.Errorf("content = %q: want the messages, cut to 40 bytes", got)
	}
}

func TestMapArgsHashAndScores(t *testing.T) {
	agent := &ownership.Agent{Name: "scored-bot", SLAs: []ownership.SLA{
		{Name: "score:eval.confidence", Metric: ownership.SLAScore, Attribute: "eval.confidence"},
		{Name: "score:eval.str", Metric: ownership.SLAScore, Attribute: "eval.str"},
	}}
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"scored-bot"}}]},
	  "scopeSpans":[{"spans":[
	   {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b171","name":"t","startTimeUnixNano":"1","endTimeUnixNano":"2",
	    "attributes":[{"key":"session.id","value":{"stringValue":"s"}},{"key":"gen_ai.tool.name","value":{"stringValue":"search"}},
	     {"key":"gen_ai.tool.call.arguments","value":{"stringValue":"{\"q\":\"secret\"}"}}]},
	   {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b172","name":"t","startTimeUnixNano":"1","endTimeUnixNano":"2",
	    "attributes":[{"key":"session.id","value":{"stringValue":"s"}},{"key":"gen_ai.tool.name","value":{"stringValue":"search"}},
	     {"key":"gen_ai.tool.call.arguments","value":{"stringValue":"{\"q\":\"other\"}"}},
	     {"key":"eval.confidence","value":{"doubleValue":0.25}},{"key":"eval.str","value":{"stringValue":"0.5"}}]},
	   {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b173","name":"c","startTimeUnixNano":"1","endTimeUnixNano":"2",
	    "attributes":[{"key":"session.id","value":{"stringValue":"s"}},{"key":"eval.confidence","value":{"boolValue":true}}]}]}]}]}`
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatal(err)
	}
	res := otlp.Map(req.Traces(), func(string) *ownership.Agent { return agent })
	if len(res.Steps) != 3 {
		t.Fatalf("steps = %+v", res.Steps)
	}
	a, b, c := res.Steps[0], res.Steps[1], res.Steps[2]
	if a.ArgsHash == "" || a.ArgsHash == b.ArgsHash || len(a.ArgsHash) != 16 || strings.Contains(a.ArgsHash, "secret") {
		t.Errorf("args hashes %q, %q: want two different 16-hex hashes", a.ArgsHash, b.ArgsHash)
	}
	if a.Content != "" || a.Scores != nil {
		t.Errorf("first step keeps content %q or scores %v", a.Content, a.Scores)
	}
	if b.Scores["eval.confidence"] != 0.25 || b.Scores["eval.str"] != 0.5 {
		t.Errorf("scores = %v", b.Scores)
	}
	if c.Scores != nil || c.ArgsHash != "" || res.WrongType["eval.confidence"] != 1 {
		t.Errorf("a boolean score: scores %v, hash %q, wrong types %v", c.Scores, c.ArgsHash, res.WrongType)
	}
}

// TestPrecedenceDocumented keeps docs/telemetry.md's table in step with the
// one in code: every attribute of each field appears, in the code's order.
func TestPrecedenceDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Which attribute wins")
	end := strings.Index(doc, "### In-house attribute names")
	if start < 0 || end < start {
		t.Fatal("docs/telemetry.md lost its precedence section")
	}
	table := doc[start:end]
	last := map[string]int{}
	for _, r := range otlp.Precedence {
		if strings.HasPrefix(r.Key, "(") {
			continue
		}
		// The field's rows start at its name in the first column.
		from := strings.Index(table, "| "+strings.ReplaceAll(r.Field, "_", " ")+" |")
		if from < 0 {
			t.Fatalf("docs/telemetry.md has no row for field %s", r.Field)
		}
		at := strings.Index(table[max(from, last[r.Field]):], "`"+r.Key+"`")
		if at < 0 {
			t.Errorf("docs/telemetry.md: %s: %s missing or out of the code's order", r.Field, r.Key)
			continue
		}
		last[r.Field] = max(from, last[r.Field]) + at + 1
	}
}

// In-house attribute names (reins.yaml telemetry:) come before the known
// families for session, tool and agent.
func TestMapInHouseNames(t *testing.T) {
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gateway"}},
	   {"key":"app.agent","value":{"stringValue":"support-bot-v2"}}]},
	  "scopeSpans":[{"spans":[
	   {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b171","name":"call","startTimeUnixNano":"1","endTimeUnixNano":"2",
	    "attributes":[{"key":"app.session","value":{"stringValue":"s-house"}},{"key":"session.id","value":{"stringValue":"s-other"}},
	     {"key":"app.tool","value":{"stringValue":"ledger.write"}}]}]}]}]}`
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalJSON([]byte(body)); err != nil {
		t.Fatal(err)
	}
	res := otlp.MapNames(req.Traces(), resolve, otlp.Names{Session: []string{"app.session"}, Tool: []string{"app.tool"},
		Agent: []string{"app.agent"}})
	if len(res.Steps) != 1 {
		t.Fatalf("steps %+v, refused %v", res.Steps, res.Reasons)
	}
	st := res.Steps[0]
	if st.Session != "s-house" || st.Tool != "ledger.write" || st.Kind != "execute_tool" || st.Agent != "support-bot" {
		t.Errorf("step = %+v: want session s-house, tool ledger.write, agent support-bot", st)
	}
	// Without the names: gateway is no agent.
	if res := otlp.Map(req.Traces(), resolve); res.Rejected != 1 || !strings.Contains(strings.Join(res.Reasons, ""), `"gateway"`) {
		t.Errorf("without in-house names: rejected %d %v", res.Rejected, res.Reasons)
	}
}

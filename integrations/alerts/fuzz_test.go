package alerts_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/reins-oss/reins/incidents"
	"github.com/reins-oss/reins/integrations/alerts"
)

// fuzzParser seeds f with every fixture of source (all sources' fixtures, so
// the fuzzer also starts from the other shapes) and checks that the parser
// never panics and that whatever it accepts is a usable alert.
func fuzzParser(f *testing.F, source string, parse alerts.Parser) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no fixtures: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parse(body, nil, testOptions())
		if err != nil {
			if code := incidents.ErrorCode(err); code != incidents.EINVALID {
				t.Fatalf("error code %q (%v), want %q", code, err, incidents.EINVALID)
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no error and no alert")
		}
		for _, a := range got {
			switch {
			case a.Source != source:
				t.Fatalf("Source = %q, want %q", a.Source, source)
			case a.Agent == "":
				t.Fatal("accepted an alert without an agent")
			case a.Fingerprint == "":
				t.Fatal("accepted an alert without a fingerprint")
			case a.Status != incidents.AlertFiring && a.Status != incidents.AlertResolved:
				t.Fatalf("Status = %q", a.Status)
			}
			switch a.Severity {
			case incidents.SeverityCritical, incidents.SeverityError, incidents.SeverityWarning, incidents.SeverityInfo:
			default:
				t.Fatalf("Severity = %q", a.Severity)
			}
			for _, s := range a.Sessions {
				if s == "" {
					t.Fatalf("empty session in %q", a.Sessions)
				}
			}
		}
	})
}

func FuzzAlertmanager(f *testing.F) {
	fuzzParser(f, alerts.SourceAlertmanager, alerts.ParseAlertmanager)
}
func FuzzGrafana(f *testing.F)  { fuzzParser(f, alerts.SourceGrafana, alerts.ParseGrafana) }
func FuzzDatadog(f *testing.F)  { fuzzParser(f, alerts.SourceDatadog, alerts.ParseDatadog) }
func FuzzGeneric(f *testing.F)  { fuzzParser(f, alerts.SourceGeneric, alerts.ParseGeneric) }
func FuzzLangfuse(f *testing.F) { fuzzParser(f, alerts.SourceLangfuse, alerts.ParseLangfuse) }

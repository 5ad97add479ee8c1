package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ofrepJSDir holds the Node program and its package.json; .ci/run installs
// its node_modules (npm ci), which git ignores.
const ofrepJSDir = "testdata/ofrep-js"

// jsReader is the Node program reading flags with @openfeature/server-sdk
// and @openfeature/ofrep-provider.
type jsReader struct {
	t   *testing.T
	in  io.WriteCloser
	out *bufio.Scanner
}

type jsRead struct {
	Value     string         `json:"value"`
	Variant   string         `json:"variant"`
	ErrorCode *string        `json:"errorCode"`
	Metadata  map[string]any `json:"metadata"`
	MS        int64          `json:"ms"`
}

func startJSReader(t *testing.T, url string) *jsReader {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(ofrepJSDir, "node_modules", "@openfeature", "ofrep-provider")); err != nil || statErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or the OFREP provider is not installed: .ci/run runs npm ci in cmd/reins/testdata/ofrep-js")
		}
		t.Skip("OFREP JavaScript check needs node and `npm ci` in cmd/reins/testdata/ofrep-js; it runs in CI")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "check.mjs")
	cmd.Dir = ofrepJSDir
	cmd.Env = append(os.Environ(), "REINS_URL="+url, "REINS_FLAG_TOKEN="+flagToken)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); _ = cmd.Wait(); cancel() })
	return &jsReader{t: t, in: in, out: bufio.NewScanner(out)}
}

// read asks the Node program to evaluate until want, for at most 2 s, and
// fails unless it read want within a second of changed (zero: no change to
// time, such as the first read while Node starts).
func (j *jsReader) read(agent, session, want string, changed time.Time) jsRead {
	j.t.Helper()
	line, _ := json.Marshal(map[string]any{"agent": agent, "session": session, "want": want, "ms": 2000})
	if _, err := j.in.Write(append(line, '\n')); err != nil {
		j.t.Fatal(err)
	}
	if !j.out.Scan() {
		j.t.Fatalf("the Node program ended: %v", j.out.Err())
	}
	var got jsRead
	if err := json.Unmarshal(j.out.Bytes(), &got); err != nil {
		j.t.Fatalf("Node answered %s: %v", j.out.Bytes(), err)
	}
	if got.Value != want {
		j.t.Fatalf("%s session %q: the JS SDK read %q (error %v), want %s", agent, session, got.Value, got.ErrorCode, want)
	}
	if took := time.Since(changed); !changed.IsZero() && took > time.Second {
		j.t.Errorf("%s session %q: the JS SDK read %s %v after the change, want within 1 s", agent, session, want, took)
	}
	return got
}

// Issue 27, acceptance 2 (JavaScript): the OpenFeature server SDK with
// @openfeature/ofrep-provider from npm reads halted, restricted with its
// allow-list and running, for an agent and a session, within a second of
// each change; an unknown agent gives the SDK an error and its default, stop.
func TestOFREPJavaScriptSDK(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			e := startTestMain(t, testOptions{Postgres: db == "postgres", Env: map[string]string{"REINS_FLAG_TOKEN": flagToken}})
			js := startJSReader(t, e.URL)
			js.read("support-bot", "s-1", "running", time.Time{})

			at := change(t, e, "halt", map[string]any{"sessions": []string{"s-1"}})
			if got := js.read("support-bot", "s-1", "halted", at); got.Metadata["halted"] != true {
				t.Errorf("halted session: metadata %v", got.Metadata)
			}
			js.read("support-bot", "s-2", "running", at)

			at = change(t, e, "restrict", map[string]any{"sessions": []string{"s-2"}, "allow": []string{"salesforce.read", "zendesk.*"}})
			if got := js.read("support-bot", "s-2", "restricted", at); got.Metadata["allow"] != "salesforce.read,zendesk.*" {
				t.Errorf("restricted session: metadata %v, want allow salesforce.read,zendesk.*", got.Metadata)
			}
			at = change(t, e, "restrict", map[string]any{"allow": []string{"kb.read"}})
			if got := js.read("support-bot", "", "restricted", at); got.Metadata["allow"] != "kb.read" {
				t.Errorf("restricted agent: metadata %v, want allow kb.read", got.Metadata)
			}
			at = change(t, e, "halt", map[string]any{})
			js.read("support-bot", "", "halted", at)

			at = change(t, e, "resume", map[string]any{})
			js.read("support-bot", "", "running", at)
			js.read("support-bot", "s-1", "running", at)
			js.read("support-bot", "s-2", "running", at)

			got := js.read("ghost-bot", "s-1", sdkStop, time.Time{})
			if got.ErrorCode == nil || *got.ErrorCode != "FLAG_NOT_FOUND" {
				t.Errorf("unknown agent: error %v, want FLAG_NOT_FOUND with the default stop", got.ErrorCode)
			}
		})
	}
}

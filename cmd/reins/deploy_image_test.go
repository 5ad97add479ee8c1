package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

const dockerfilePath = "../../examples/deploy/Dockerfile"

// nonroot is the uid and gid of distroless's nonroot user, the image's USER.
const nonroot = "65532"

// The image's premise, proven without a container engine: the Dockerfile's own
// `go build` line gives a static binary that, alone in a read-only root with
// CA certificates and a config, running as the image's user, serves /healthz
// and /readyz with its SQLite database on a writable "volume".
func TestStaticBinaryServesFromEmptyRoot(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the empty-root check needs Linux (ELF, chroot, mount namespaces)")
	}
	dockerfile, err := os.ReadFile(dockerfilePath)
	if err != nil {
		t.Fatal(err)
	}
	checkDockerfile(t, string(dockerfile))

	dir := t.TempDir()
	bin := filepath.Join(dir, "reins")
	const version, commit, date = "v9.8.7-ci", "0123456789abcdef", "2026-01-02T03:04:05Z"
	build := dockerBuildLine(t, string(dockerfile))
	cmd := exec.Command("sh", "-c", strings.ReplaceAll(build, "/out/reins", bin))
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "VERSION="+version, "COMMIT="+commit, "DATE="+date)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	checkStatic(t, bin)

	// The root file system: the binary, CA certificates, the config and the
	// volume's mount point. Nothing else: no shell, no libc, no /tmp.
	rootfs := filepath.Join(dir, "rootfs")
	data := filepath.Join(dir, "volume")
	imageCopyFile(t, bin, filepath.Join(rootfs, "usr/local/bin/reins"), 0o755)
	imageCopyFile(t, "/etc/ssl/certs/ca-certificates.crt", filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"), 0o644)
	tmpl, err := os.ReadFile("testdata/reins.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(tmpl), "{{HALT_URL}}", "http://127.0.0.1:1/halt")
	imageWriteFile(t, filepath.Join(rootfs, "etc/reins/reins.yaml"), []byte(cfg), 0o644)
	for _, d := range []string{filepath.Join(rootfs, "var/lib/reins"), data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}

	addr := freeAddr(t)
	env := []string{ // the image's ENV plus the secrets the config names
		"REINS_CONFIG=/etc/reins/reins.yaml",
		"REINS_DATABASE_URL=sqlite:/var/lib/reins/reins.db",
		"REINS_LISTEN=" + addr,
		"SUPPORT_BOT_HALT_SECRET=" + haltSecret,
		"PD_SUPPORT_AI_KEY=k",
	}
	var serve *exec.Cmd
	if os.Geteuid() == 0 && imageHasCommands("unshare", "chroot", "mount") && imageCanUnshareMount() {
		// As the container runtime would: root read-only, the volume bound
		// writable over /var/lib/reins, then chroot as nonroot.
		if err := os.Chown(data, 65532, 65532); err != nil {
			t.Fatal(err)
		}
		script := `set -e
mount --bind "$R" "$R"
mount -o remount,ro,bind "$R" "$R"
mount --bind "$D" "$R/var/lib/reins"
exec env -i ` + strings.Join(env, " ") + ` "$CHROOT" --userspec=` + nonroot + `:` + nonroot + ` "$R" /usr/local/bin/reins serve`
		serve = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
		chroot, _ := exec.LookPath("chroot")
		serve.Env = []string{"PATH=" + os.Getenv("PATH"), "R=" + rootfs, "D=" + data, "CHROOT=" + chroot}
		t.Logf("mode: chroot into a read-only root as uid %s", nonroot)
	} else {
		// Unprivileged fallback: the same binary, started from an empty
		// directory with the environment only (paths made relative to it).
		empty := filepath.Join(dir, "empty")
		if err := os.Mkdir(empty, 0o755); err != nil {
			t.Fatal(err)
		}
		serve = exec.Command(bin, "serve")
		serve.Dir = empty
		serve.Env = []string{
			"REINS_CONFIG=" + filepath.Join(rootfs, "etc/reins/reins.yaml"),
			"REINS_DATABASE_URL=sqlite:" + filepath.Join(data, "reins.db"),
			"REINS_LISTEN=" + addr,
			"SUPPORT_BOT_HALT_SECRET=" + haltSecret,
			"PD_SUPPORT_AI_KEY=k",
		}
		t.Logf("mode: empty working directory, environment only (not root or no unshare)")
	}
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
		<-exited
	})

	for _, path := range []string{"/healthz", "/readyz"} {
		if err := imageWaitOK("http://"+addr+path, 30*time.Second, exited); err != nil {
			t.Fatalf("GET %s: %v\nreins output:\n%s", path, err, logs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(data, "reins.db")); err != nil {
		t.Errorf("the SQLite database is not on the volume: %v", err)
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), version) {
		t.Errorf("reins version = %q (%v), want the stamped %s", out, err, version)
	}
}

// checkDockerfile pins what the issue asks of the image.
func checkDockerfile(t *testing.T, df string) {
	t.Helper()
	for _, want := range []string{
		"CGO_ENABLED=0", "-trimpath",
		"-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-X main.date=${DATE}",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER " + nonroot + ":" + nonroot,
		`VOLUME ["/var/lib/reins"]`,
		"REINS_DATABASE_URL=sqlite:/var/lib/reins/",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// dockerBuildLine returns the Dockerfile's `RUN CGO_ENABLED=0 go build` command.
func dockerBuildLine(t *testing.T, df string) string {
	t.Helper()
	joined := strings.ReplaceAll(df, "\\\n", " ")
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(joined)
	if m == nil {
		t.Fatal("Dockerfile has no `RUN CGO_ENABLED=0 go build` line")
	}
	return m[1]
}

// checkStatic fails unless bin is an ELF file with no interpreter and no
// dynamic section: it runs with no libc and no loader in the image.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (%v program header)", p.Type)
		}
	}
	if f.Section(".dynamic") != nil || f.Section(".interp") != nil {
		t.Error("the binary has a .dynamic or .interp section")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
}

func imageWaitOK(url string, d time.Duration, exited <-chan error) error {
	deadline := time.Now().Add(d)
	var last error = errors.New("no answer")
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return errors.New("reins exited: " + imageExitString(err))
		default:
		}
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(res.Status)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return last
}

func imageExitString(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

func imageHasCommands(names ...string) bool {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return false
		}
	}
	return true
}

// imageCanUnshareMount says whether this process may make a mount namespace
// (root in a container often may not).
func imageCanUnshareMount() bool {
	return exec.Command("unshare", "--mount", "true").Run() == nil
}

func imageCopyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	imageWriteFile(t, dst, b, mode)
}

func imageWriteFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

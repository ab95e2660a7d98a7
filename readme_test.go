package mplogin_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// The README's commands are run as printed, from a copy of the repository
// as the working directory, so that the README cannot show a command that
// does not work from a fresh clone. The commands are read from the README
// itself: when it changes, this test runs the new ones.

// readme is the repository's README.md.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlock is one fenced block of a Markdown text, with the line before it.
type codeBlock struct {
	lang, before string
	lines        []string
}

func codeBlocks(md string) []codeBlock {
	var blocks []codeBlock
	var cur *codeBlock
	prev := ""
	for line := range strings.Lines(md) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			cur = &codeBlock{lang: strings.TrimPrefix(line, "```"), before: prev}
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	return blocks
}

// command is a shell line without its trailing comment.
func command(line string) string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// readmeCommands are the README's first two commands (run it, test it),
// the serve command and the YAML printed after it.
func readmeCommands(t *testing.T) (run, serve, yaml string) {
	t.Helper()
	blocks := codeBlocks(readme(t))
	if len(blocks) == 0 || blocks[0].lang != "sh" || len(blocks[0].lines) < 2 {
		t.Fatal("README.md must start with a sh block of two commands: run mplogin, run the tests")
	}
	run = command(blocks[0].lines[0])
	for i, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		for _, l := range b.lines {
			if c := command(l); strings.HasPrefix(c, "mplogin serve ") || strings.Contains(c, "./cmd/mplogin serve ") {
				serve = c
				for _, y := range blocks[i+1:] {
					if y.lang == "yaml" {
						yaml = strings.Join(y.lines, "\n") + "\n"
						break
					}
				}
				return run, serve, yaml
			}
		}
	}
	t.Fatal("README.md shows no `mplogin serve` command followed by a yaml block")
	return
}

// copyRepo copies the repository's files (those git knows and does not
// ignore, or every file outside .git without git) into a new directory.
func copyRepo(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mplogin")
	var files []string
	if out, err := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output(); err == nil {
		for f := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
			files = append(files, f)
		}
	} else {
		err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == ".git" || d.Name() == "mplogin-data") {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// startShell runs line with bash in dir, env added to the test's
// environment, as a testutil.Process: in a process group of its own, so
// that a `go run` and the program it runs stop together.
func startShell(t *testing.T, dir, line string, o testutil.ProcessOptions, env ...string) *testutil.Process {
	t.Helper()
	o.Dir, o.Env = dir, append(os.Environ(), env...)
	return testutil.StartProcess(t, fmt.Sprintf("%q", line), "bash", []string{"-c", line}, o)
}

// portFree fails the test when addr is taken: the README's commands use
// fixed ports, and a test that quietly moved them would prove nothing.
func portFree(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the README's commands listen on %s, which is taken: %v", addr, err)
	}
	ln.Close()
}

// TestREADMEDemo runs the README's first command literally and then the
// walkthrough the demo prints.
func TestREADMEDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mplogin and runs the README's command; skipped with -short")
	}
	run, _, _ := readmeCommands(t)
	if !strings.Contains(run, "demo") {
		t.Fatalf("the README's first command is %q; it should run the demo", run)
	}
	for _, addr := range []string{"127.0.0.1:8300", "127.0.0.1:9300"} {
		portFree(t, addr)
	}
	dir := copyRepo(t)
	pr, pw := io.Pipe()
	sh := startShell(t, dir, run, testutil.ProcessOptions{Stdout: pw})
	go func() { <-sh.Done(); pw.Close() }()
	// Building takes a while on a cold cache; the demo prints the
	// walkthrough once both listeners are open.
	const begin, end = "# --- walkthrough: begin ---", "# --- walkthrough: end ---"
	out := bufio.NewReader(pr)
	var text strings.Builder
	for !strings.Contains(text.String(), end) {
		line, err := out.ReadString('\n')
		text.WriteString(line)
		if err != nil {
			t.Fatalf("%q ended before its walkthrough: %v\nstdout:\n%s\nstderr:\n%s", run, err, text.String(), sh.Stderr())
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	script := text.String()
	script = script[strings.Index(script, begin):]
	res, err := exec.Command("bash", "-e", "-o", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the printed walkthrough failed: %v\n%s\nstderr:\n%s", err, res, sh.Stderr())
	}
	got := string(res)
	phone := `"phone_number":"` + emulator.New(emulator.Config{}).PhoneNumber("alice") + `"`
	if n := strings.Count(got, phone); n != 2 {
		t.Errorf("%s appears %d times in the walkthrough's output, want 2 (by code and by payload):\n%s", phone, n, got)
	}
	for _, want := range []string{`"token_type":"Bearer"`, `"created":true`, `"active":true`, `"session_key_valid":true`,
		`"nickName":"alice"`, "logout: HTTP 204", `"error":"invalid_token"`} {
		if !strings.Contains(got, want) {
			t.Errorf("%q missing from the walkthrough's output:\n%s", want, got)
		}
	}
	// `go run` itself exits 1 after Ctrl-C, whatever the program does; the
	// program's own failures are the lines main prints.
	var exit *exec.ExitError
	if err := sh.Stop(syscall.SIGINT, 30*time.Second); err != nil && !errors.As(err, &exit) {
		t.Error(err)
	}
	if failed.MatchString(sh.Stderr()) {
		t.Errorf("%q failed:\n%s", run, sh.Stderr())
	}
	for _, f := range []string{"mplogin-data/master.key", "mplogin-data/mplogin.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the demo's default data directory: %v", err)
		}
	}
}

var failed = regexp.MustCompile(`(?m)^mplogin: `)

var envRef = regexp.MustCompile(`\$\{([A-Z0-9_]+)\}`)

// TestREADMEServe starts the README's serve command with the YAML printed
// after it, as printed, secrets from the environment.
func TestREADMEServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mplogin and runs the README's command; skipped with -short")
	}
	_, serve, yaml := readmeCommands(t)
	listen := regexp.MustCompile(`(?m)^listen:\s*(\S+)`).FindStringSubmatch(yaml)
	if listen == nil {
		t.Fatalf("the README's YAML has no listen address:\n%s", yaml)
	}
	portFree(t, listen[1])
	dir := copyRepo(t)
	if err := os.WriteFile(filepath.Join(dir, "mplogin.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	// `mplogin` is the binary a user installed.
	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "mplogin"), "./cmd/mplogin")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	var secrets []string
	for _, m := range envRef.FindAllStringSubmatch(yaml, -1) {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		v := hex.EncodeToString(b)
		if m[1] == "MPLOGIN_MASTER_KEY" {
			v = base64.StdEncoding.EncodeToString(b)
		}
		env = append(env, m[1]+"="+v)
		secrets = append(secrets, v)
	}
	// The service says where it listens once it does (at the default log
	// level, info).
	sh := startShell(t, dir, serve, testutil.ProcessOptions{Stdout: io.Discard, Ready: testutil.ServingLine()}, env...)
	if _, err := sh.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	base := "http://" + listen[1]
	resp, err := http.Get(base + "/v1/session")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/session without a token: %d, want 401", resp.StatusCode)
	}
	if err := sh.Stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("%q after SIGTERM: %v\nstderr:\n%s", serve, err, sh.Stderr())
	}
	if store := regexp.MustCompile(`(?m)^store:\s*sqlite:(\S+)`).FindStringSubmatch(yaml); store != nil {
		if _, err := os.Stat(filepath.Join(dir, store[1])); err != nil {
			t.Errorf("the database is not where the YAML says, relative to the working directory: %v", err)
		}
	}
	for _, s := range secrets {
		if bytes.Contains([]byte(sh.Stderr()), []byte(s)) {
			t.Errorf("the log carries a secret from the environment")
		}
	}
}

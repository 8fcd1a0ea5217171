package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tmcad/daemon"
	"tmcad/daemon/pipeline"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckConfigExample(t *testing.T) {
	code, out, errs := runCLI(t, "check-config", "../../systemd/tmcad.example.toml")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "valid") || !strings.Contains(out, "[watch]") {
		t.Fatalf("output: %s", out)
	}
}

func TestCheckConfigRejects(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ body, key string }{
		"unknown.toml":  {"[watch]\nstable_afterr = \"30s\"\n", "watch.stable_afterr"},
		"duration.toml": {"[watch]\nstable_after = \"thirty\"\n", "watch.stable_after"},
	}
	for name, tc := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errs := runCLI(t, "check-config", p)
		if code == 0 {
			t.Errorf("%s: exit 0", name)
		}
		if !strings.Contains(errs, tc.key) || !strings.Contains(errs, name) {
			t.Errorf("%s: error does not name file and key %s: %q", name, tc.key, errs)
		}
	}
}

func TestVersionPrintsLoadedRuntime(t *testing.T) {
	code, out, errs := runCLI(t, "version")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "onnxruntime 1.30.0") {
		t.Fatalf("output: %s", out)
	}
}

func TestHelpAndUnknownCommand(t *testing.T) {
	if code, out, _ := runCLI(t, "--help"); code != 0 || !strings.Contains(out, "check-config") {
		t.Fatalf("--help: %d %s", code, out)
	}
	if code, _, errs := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown command: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "check-config", "--help"); code != 0 || !strings.Contains(errs, "Usage: tmcad check-config") {
		t.Fatalf("check-config --help: %d %s", code, errs)
	}
}

// `tmcad version` says which execution provider is in use: CUDA asked for
// on a machine without the provider library falls back to CPU with one
// warning naming the missing file, or fails naming it.
func TestVersionExecutionProvider(t *testing.T) {
	dir := t.TempDir()
	for name, fallback := range map[string]bool{"fallback.toml": true, "strict.toml": false} {
		body := "[log]\nformat = \"json\"\n[model]\nexecution_provider = \"cuda\"\nfallback_to_cpu = " + map[bool]string{true: "true", false: "false"}[fallback] + "\n"
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI(t, "version", "--config", p, "--model", "../../testdata/model-tiny")
		if fallback {
			if code != 0 || !strings.Contains(out, "execution provider cpu") {
				t.Fatalf("fallback: exit %d\n%s\n%s", code, out, errs)
			}
			if n := strings.Count(errs, `"level":"warn"`); n != 1 || !strings.Contains(errs, "libonnxruntime_providers_cuda.so") {
				t.Fatalf("fallback: want one warning naming the CUDA provider library, got:\n%s", errs)
			}
		} else if code != 1 || !strings.Contains(errs, "libonnxruntime_providers_cuda.so not found") {
			t.Fatalf("strict: exit %d, want 1 naming the missing library:\n%s", code, errs)
		}
	}
}

// A password embedded in archive.url is rejected by check-config (as run
// rejects it), and the error does not print it.
func TestCheckConfigRejectsCredentialsInURL(t *testing.T) {
	p := filepath.Join(t.TempDir(), "creds.toml")
	body := "[archive]\nkind = \"dicomweb\"\nurl = \"https://tmcad:s3cretPW@pacs.example.org/dicom-web\"\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "check-config", p)
	if code == 0 {
		t.Errorf("exit 0 for a password in archive.url:\n%s", out)
	}
	if !strings.Contains(errs, "archive.url") || !strings.Contains(errs, "credentials") {
		t.Errorf("error does not name archive.url and credentials: %q", errs)
	}
	if strings.Contains(out+errs, "s3cretPW") {
		t.Errorf("the password is printed:\n%s%s", out, errs)
	}
}

// tmcad status prints values from the database (UIDs from DICOM files)
// with control characters escaped: no terminal escape, no forged line.
func TestStatusEscapesControlCharacters(t *testing.T) {
	evil := "1.2.3\x1b[2J\x1b]0;pwned\x07\nFAKE LINE\t\x9b"
	r := &daemon.StatusReport{
		Queue:          "sqlite",
		AwaitingReport: []daemon.SeriesBrief{{StudyUID: evil, SeriesUID: evil}},
		Skipped:        []daemon.SeriesBrief{{SeriesUID: evil, Reason: evil}},
		LastErrors:     []daemon.SeriesBrief{{SeriesUID: evil, Reason: evil, Error: evil}},
		LastDone:       []daemon.SeriesBrief{{SeriesUID: evil, State: "done", Reason: evil}},
		LastSEGs:       []daemon.SEGBrief{{SOPUID: evil, SourceSeriesUID: evil, ModelVersion: evil, Sink: evil}},
	}
	var b strings.Builder
	if err := printStatus(&b, r); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, c := range []string{"\x1b", "\x07", "\x9b", "\xc2\x9b", "FAKE LINE\t", "\nFAKE"} {
		if strings.Contains(out, c) {
			t.Errorf("status output holds %q raw:\n%s", c, out)
		}
	}
	if !strings.Contains(out, `1.2.3\x1b[2J\x1b]0;pwned\x07\x0aFAKE LINE\x09\x9b`) {
		t.Errorf("status output does not show the escaped UID:\n%s", out)
	}
}

// readSummary reads the summary.json `tmcad process --masks-png DIR` writes.
func readSummary(t *testing.T, dir string) []pipeline.BatchRow {
	t.Helper()
	var sum struct {
		Series []pipeline.BatchRow `json:"series"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("%s/summary.json: %v", dir, err)
	}
	return sum.Series
}

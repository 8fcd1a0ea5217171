package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExampleParsesAndMatchesDefaults(t *testing.T) {
	c, err := Load("../systemd/tmcad.example.toml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	d := Default()
	d.path = c.path
	if stripRaw(c) != stripRaw(d) {
		var a, b bytes.Buffer
		_ = c.Dump(&a)
		_ = d.Dump(&b)
		t.Fatalf("example differs from defaults:\nexample:\n%s\ndefaults:\n%s", a.String(), b.String())
	}
}

// stripRaw drops the raw text of durations so that "30s" and D(30s) compare equal.
func stripRaw(c *Config) string {
	var b bytes.Buffer
	_ = c.Dump(&b)
	return b.String()
}

// Every key of Config must be documented in the example file.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../systemd/tmcad.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := f.Tag.Get("toml")
			if tag == "" || !f.IsExported() {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration{}) && f.Type != reflect.TypeOf(Secret{}) {
				// A table holding only tables ([source]) is written as
				// its sub-tables ([source.dicomweb]).
				if !strings.Contains(text, "["+prefix+tag+"]") && !strings.Contains(text, "["+prefix+tag+".") {
					t.Errorf("section [%s%s] missing from example", prefix, tag)
				}
				walk(prefix+tag+".", f.Type)
				continue
			}
			re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(tag) + ` = `)
			if !re.MatchString(text) {
				t.Errorf("key %s%s missing from example", prefix, tag)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
}

func TestErrorsNameFileAndKey(t *testing.T) {
	cases := []struct {
		name, toml string
		want       []string
	}{
		{"unknown key", "[watch]\nstable_afterr = \"5s\"\n", []string{"tmcad.toml", "watch.stable_afterr", "unknown key"}},
		{"unknown section", "[bogus]\nx = 1\n", []string{"tmcad.toml", "bogus"}},
		{"negative duration", "[watch]\nstable_after = \"-5s\"\n", []string{`tmcad.toml: watch.stable_after: must be > 0, got "-5s"`}},
		{"malformed duration", "[reports]\nwait = \"tomorrow\"\n", []string{"tmcad.toml: reports.wait: not a duration", `"tomorrow"`}},
		{"bad enum", "[seg]\ntype = \"labelmap\"\n", []string{"seg.type", "binary, fractional", "labelmap"}},
		{"bad cron", "[schedule]\nreprocess = \"61 * * * *\"\n", []string{"schedule.reprocess"}},
		{"wrong type", "[queue]\nworkers = \"two\"\n", []string{"tmcad.toml", "workers"}},
		{"dicomweb without url", "[archive]\nkind = \"dicomweb\"\n", []string{"archive.url"}},
		{"dimse tls without ca_file", "[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"pacs\"\ntls = true\n", []string{"archive.ca_file", "archive.tls = true"}},
		{"dimse tls_cert without tls_key", "[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"pacs\"\ntls = true\nca_file = \"/ca.pem\"\ntls_cert = \"/c.pem\"\n", []string{"archive.tls_cert, archive.tls_key", "both"}},
		{"dimse tls_cert without tls", "[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"pacs\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n", []string{"archive.tls_cert", "archive.tls = true"}},
		{"tls with dicomweb", "[archive]\nkind = \"dicomweb\"\nurl = \"https://pacs/dicom-web\"\ntls = true\n", []string{"archive.tls", "only for archive.kind"}},
		{"bad uid root", "[seg]\nuid_root = \"1.2.x\"\n", []string{"seg.uid_root"}},
		{"two errors", "[queue]\nworkers = 0\nmax_attempts = 0\n", []string{"queue.workers", "queue.max_attempts"}},
		{"bad node name", "node = \"gpu node/1\"\n", []string{"tmcad.toml: node:", "gpu node/1"}},
		{"split roles on sqlite", "[roles]\ningest = false\n", []string{"roles.ingest", "embedded SQLite"}},
		{"no role", "[roles]\ningest = false\nprocess = false\nexport = false\n", []string{"roles", "at least one"}},
		{"process without export needs a shared outbox", "[queue]\ndatabase_url = \"postgres://db/tmcad\"\n[roles]\nexport = false\n", []string{"archive.outbox_dir", "roles.process and roles.export"}},
		{"relative outbox_dir", "[archive]\noutbox_dir = \"outbox\"\n", []string{"archive.outbox_dir", "absolute"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.toml), "/etc/tmcad/tmcad.toml")
			if err == nil {
				t.Fatalf("accepted %q", tc.toml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestSecretsFromEnvAndFileAreMasked(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMCAD_TEST_TOKEN", "tok-env-value")
	cfgPath := filepath.Join(dir, "tmcad.toml")
	body := `
[archive]
kind = "dicomweb"
url = "http://127.0.0.1:8042/dicom-web"
username = "tmcad"
password = { file = "pw" }
[queue]
database_url = { env = "TMCAD_TEST_TOKEN_DB" }
`
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfgPath); err == nil || !strings.Contains(err.Error(), "TMCAD_TEST_TOKEN_DB is not set") {
		t.Fatalf("missing env var: got %v", err)
	}
	t.Setenv("TMCAD_TEST_TOKEN_DB", "postgres://u:dbpass@127.0.0.1/tmcad")
	c, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.Archive.Password.Value != "s3cret-file" {
		t.Errorf("password from file: got %q", c.Archive.Password.Value)
	}
	if c.Queue.DatabaseURL.Value != "postgres://u:dbpass@127.0.0.1/tmcad" {
		t.Errorf("database_url from env: got %q", c.Queue.DatabaseURL.Value)
	}
	var out bytes.Buffer
	if err := c.Dump(&out); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-file", "dbpass"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("dump reveals a secret:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), "****") {
		t.Errorf("dump does not show masked secrets:\n%s", out.String())
	}
}

func TestDurationsParse(t *testing.T) {
	c, err := Parse([]byte("[watch]\nstable_after = \"1m30s\"\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Watch.StableAfter.Duration != 90*time.Second {
		t.Fatalf("got %v", c.Watch.StableAfter)
	}
}

// seg.preview is gone: asking for a PNG in the archive is an error that
// names the key and what to use instead; "false" still loads.
func TestSEGPreviewRemoved(t *testing.T) {
	_, err := Parse([]byte("[seg]\npreview = true\n"), "/etc/tmcad/tmcad.toml")
	if err == nil {
		t.Fatal("seg.preview = true accepted")
	}
	for _, want := range []string{"tmcad.toml: seg.preview: removed", "seg.overlay", "tmcad preview"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "unknown key") {
		t.Errorf("error %q calls a removed key unknown", err)
	}
	if _, err := Parse([]byte("[seg]\npreview = false\n"), "tmcad.toml"); err != nil {
		t.Errorf("seg.preview = false: %v", err)
	}
	if _, err := Parse([]byte("[seg]\npreview = false\npreveiw = 1\n"), "tmcad.toml"); err == nil || !strings.Contains(err.Error(), "seg.preveiw: unknown key") {
		t.Errorf("a misspelt key beside seg.preview = false: %v", err)
	}
}

// A worker-only node on a shared queue with a shared outbox is accepted.
func TestWorkerOnlyNode(t *testing.T) {
	c, err := Parse([]byte("node = \"gpu-1\"\n[roles]\ningest = false\nexport = false\n[archive]\noutbox_dir = \"/srv/tmcad/outbox\"\n[queue]\ndatabase_url = \"postgres://db/tmcad\"\n"), "tmcad.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeName() != "gpu-1" || c.Roles.Ingest || !c.Roles.Process || c.Roles.Export || c.OutboxRoot() != "/srv/tmcad/outbox" {
		t.Errorf("node %q roles %+v outbox %q", c.NodeName(), c.Roles, c.OutboxRoot())
	}
}

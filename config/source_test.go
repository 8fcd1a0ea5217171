package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSourceDICOMwebOffByDefault: the poller is off, and its defaults are
// usable once a URL is given.
func TestSourceDICOMwebOffByDefault(t *testing.T) {
	c, err := Parse(nil, "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	s := c.Source.DICOMweb
	if s.Enabled || s.URL != "" {
		t.Fatalf("source.dicomweb on by default: %+v", s)
	}
	if s.PollEvery.Duration != 5*time.Minute || s.PageSize != 100 || s.LookBackDays != 7 || s.MaxRetries != 5 || s.Timeout.Duration != time.Minute {
		t.Errorf("defaults: %+v", s)
	}
	if got := c.PullStagingDir(); got != "/var/spool/tmcad/pull-staging" {
		t.Errorf("staging dir %q", got)
	}
	if got := c.PullStateDir(); got != "/var/lib/tmcad/pull" {
		t.Errorf("state dir %q", got)
	}
	if got := c.PullModalities([]string{"CR", "DX"}); strings.Join(got, ",") != "CR,DX" {
		t.Errorf("modalities fall back to the model's: %v", got)
	}
	c.Select.Modalities = []string{"CT"}
	if got := c.PullModalities([]string{"CR"}); strings.Join(got, ",") != "CT" {
		t.Errorf("modalities fall back to select.modalities: %v", got)
	}
}

// TestSourceDICOMwebValidation: each bad [source.dicomweb] key is named.
func TestSourceDICOMwebValidation(t *testing.T) {
	on := "[source.dicomweb]\nenabled = true\nurl = \"http://pacs:8042/dicom-web\"\n"
	cases := map[string]string{
		"[source.dicomweb]\nenabled = true\n":                                             "source.dicomweb.url",
		"[source.dicomweb]\nenabled = true\nurl = \"ftp://pacs/dicom-web\"\n":             "source.dicomweb.url",
		"[source.dicomweb]\nurl = \"http://u:pw@pacs/dicom-web\"\n":                       "source.dicomweb.url",
		on + "poll_every = \"0s\"\n":                                                      "source.dicomweb.poll_every",
		on + "poll_every = \"often\"\n":                                                   "source.dicomweb.poll_every",
		on + "timeout = \"-1s\"\n":                                                        "source.dicomweb.timeout",
		on + "modalities = [\"ct\"]\n":                                                    "source.dicomweb.modalities",
		on + "since = \"1.6.2024\"\n":                                                     "source.dicomweb.since",
		on + "look_back_days = -1\n":                                                      "source.dicomweb.look_back_days",
		on + "page_size = 0\n":                                                            "source.dicomweb.page_size",
		on + "max_retries = -2\n":                                                         "source.dicomweb.max_retries",
		on + "password = \"x\"\n":                                                         "source.dicomweb.username",
		on + "username = \"u\"\npassword = \"x\"\ntoken = \"y\"\n":                        "source.dicomweb.password, source.dicomweb.token",
		on + "staging_dir = \"/var/spool/tmcad/dicom/staging\"\n":                         "source.dicomweb.staging_dir",
		on + "staging_dir = \"/var/spool/tmcad/dicom\"\n":                                 "source.dicomweb.staging_dir",
		"[source.dicomweb]\nenabled = true\nurl = \"http://pacs/dicom-web\"\nbogus = 1\n": "source.dicomweb.bogus: unknown key",
	}
	for in, key := range cases {
		_, err := Parse([]byte(in), "t.toml")
		if err == nil || !strings.Contains(err.Error(), "t.toml: "+key) {
			t.Errorf("%q: error %v, want one naming %s", in, err, key)
		}
	}
	c, err := Parse([]byte(on+"modalities = [\"CT\", \"CR\"]\nsince = \"2024-06-01\"\nstaging_dir = \"/var/spool/tmcad/pull\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	since, err := c.PullSince()
	if err != nil || since.Format(time.DateOnly) != "2024-06-01" {
		t.Errorf("since: %v, %v", since, err)
	}
	if c.PullStagingDir() != "/var/spool/tmcad/pull" {
		t.Errorf("staging dir %q", c.PullStagingDir())
	}
}

// TestSourceDICOMwebSecrets: the password or token can come from the
// environment or a file, and never shows in a dump.
func TestSourceDICOMwebSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tok"), []byte("pull-token-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMCAD_TEST_PULL_PW", "pull-pw-value")
	for body, want := range map[string]string{
		"[source.dicomweb]\nenabled = true\nurl = \"https://pacs/dicom-web\"\nusername = \"u\"\npassword = { env = \"TMCAD_TEST_PULL_PW\" }\n": "pull-pw-value",
		"[source.dicomweb]\nenabled = true\nurl = \"https://pacs/dicom-web\"\ntoken = { file = \"tok\" }\n":                                    "pull-token-value",
	} {
		p := filepath.Join(dir, "tmcad.toml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Source.DICOMweb.Password.Value + c.Source.DICOMweb.Token.Value; got != want {
			t.Errorf("secret resolved to %q, want %q", got, want)
		}
		var out strings.Builder
		if err := c.Dump(&out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), want) || !strings.Contains(out.String(), "[source.dicomweb]") {
			t.Errorf("dump reveals the secret or lacks the table:\n%s", out.String())
		}
	}
	if _, err := Parse([]byte("[source.dicomweb]\ntoken = { env = \"TMCAD_TEST_PULL_UNSET\" }\n"), "t.toml"); err == nil || !strings.Contains(err.Error(), "source.dicomweb.token: environment variable TMCAD_TEST_PULL_UNSET is not set") {
		t.Errorf("unset env: %v", err)
	}
}

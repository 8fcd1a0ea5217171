package webclient

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		ep   Endpoint
		want string // "" when valid
	}{
		{"plain", Endpoint{BaseURL: "https://pacs.example/dicom-web"}, ""},
		{"basic", Endpoint{BaseURL: "http://127.0.0.1:8042/dicom-web", Username: "u", Password: "p"}, ""},
		{"bearer", Endpoint{BaseURL: "https://pacs.example/", BearerToken: "t"}, ""},
		{"scheme", Endpoint{BaseURL: "ftp://pacs.example/"}, "must be an http(s) URL"},
		{"no host", Endpoint{BaseURL: "https:///dicom-web"}, "must be an http(s) URL"},
		{"user info", Endpoint{BaseURL: "https://u:secret@pacs.example/"}, "must not hold credentials"},
		{"both", Endpoint{BaseURL: "https://pacs.example/", Username: "u", BearerToken: "t"}, "not both"},
		{"password alone", Endpoint{BaseURL: "https://pacs.example/", Password: "p"}, "without a username"},
	} {
		_, err := c.ep.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows the password: %v", c.name, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	Endpoint{BearerToken: "tok"}.Authorize(req)
	if got := req.Header.Get("Authorization"); got != "Bearer tok" {
		t.Errorf("bearer: Authorization %q", got)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://x/", nil)
	Endpoint{Username: "u", Password: "p"}.Authorize(req)
	if u, p, ok := req.BasicAuth(); !ok || u != "u" || p != "p" {
		t.Errorf("basic: got %q %q %v", u, p, ok)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://x/", nil)
	Endpoint{}.Authorize(req)
	if got := req.Header.Get("Authorization"); got != "" {
		t.Errorf("none: Authorization %q", got)
	}
}

func TestRoundTripperCAFile(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Endpoint{CAFile: notPEM}).RoundTripper(); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file without PEM: error %v", err)
	}
	if _, err := (Endpoint{CAFile: filepath.Join(dir, "missing.pem")}).RoundTripper(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing CA file: error %v, want one wrapping ErrNotExist", err)
	}
	tr, err := Endpoint{InsecureSkipVerify: true}.RoundTripper()
	if err != nil {
		t.Fatal(err)
	}
	if c := tr.(*http.Transport).TLSClientConfig; c == nil || !c.InsecureSkipVerify {
		t.Errorf("insecure_skip_verify not applied: %+v", c)
	}
}

func TestRedactURL(t *testing.T) {
	if got := RedactURL("https://u:secret@pacs.example/dicom-web?token=abc"); got != "https://pacs.example/dicom-web" {
		t.Errorf("RedactURL = %q", got)
	}
}

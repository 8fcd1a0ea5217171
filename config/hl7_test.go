package config

import (
	"strings"
	"testing"
)

// TestHL7AndDIMSEValidation: the [hl7] and dimse archive keys are checked,
// each error naming its key.
func TestHL7AndDIMSEValidation(t *testing.T) {
	cases := map[string]string{
		"[hl7]\nlisten = \"nonsense\"\n":                                                                        "hl7.listen",
		"[hl7]\nlisten = \"127.0.0.1:2575\"\nallow = []\n":                                                      "hl7.allow",
		"[hl7]\nallow = [\"10.0.0.0/33\"]\n":                                                                    "hl7.allow",
		"[hl7]\ntls_cert = \"/x.pem\"\n":                                                                        "hl7.tls_cert, hl7.tls_key",
		"[hl7]\nidle_timeout = \"0s\"\n":                                                                        "hl7.idle_timeout",
		"[hl7]\nmax_connections = 0\n":                                                                          "hl7.max_connections",
		"[hl7]\nmax_message_bytes = 10\n":                                                                       "hl7.max_message_bytes",
		"[watch]\nreports_dir = \"\"\n[hl7]\nlisten = \"127.0.0.1:2575\"\n":                                     "watch.reports_dir",
		"[archive]\nkind = \"dimse\"\nhost = \"pacs\"\n":                                                        "archive.called_ae",
		"[archive]\nkind = \"dimse\"\ncalled_ae = \"A\\\\B\"\nhost = \"pacs\"\n":                                "archive.called_ae",
		"[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\n":                                                   "archive.host",
		"[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"p\"\nport = 0\n":                           "archive.port",
		"[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"p\"\ncalling_ae = \"THIS_IS_TOO_LONG_\"\n": "archive.calling_ae",
	}
	for in, key := range cases {
		_, err := Parse([]byte(in), "t.toml")
		if err == nil || !strings.Contains(err.Error(), "t.toml: "+key+":") {
			t.Errorf("%q: error %v, want one naming %s", in, err, key)
		}
	}
	ok := "[archive]\nkind = \"dimse\"\ncalled_ae = \"PACS\"\nhost = \"10.1.2.3\"\n[hl7]\nlisten = \"127.0.0.1:2575\"\nallow = [\"10.1.0.0/16\", \"127.0.0.1\", \"::ffff:127.0.0.1/128\"]\n"
	c, err := Parse([]byte(ok), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := HL7AllowPrefixes(c.HL7.Allow)
	if err != nil || len(p) != 3 || p[1].String() != "127.0.0.1/32" || p[2].String() != "127.0.0.1/32" {
		t.Fatalf("allow prefixes %v, %v", p, err)
	}
	if c.Archive.Port != 104 || c.Archive.CallingAE != "TMCAD" {
		t.Errorf("dimse defaults: port %d, calling_ae %q", c.Archive.Port, c.Archive.CallingAE)
	}
}

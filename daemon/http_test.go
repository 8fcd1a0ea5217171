package daemon

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// A non-loopback http.listen logs a warning at start; loopback does not.
func TestHTTPListenNonLoopbackWarns(t *testing.T) {
	for _, tc := range []struct {
		listen string
		warn   bool
	}{{"127.0.0.1:0", false}, {"[::1]:0", false}, {"0.0.0.0:0", true}} {
		cfg := testConfig(t)
		cfg.HTTP.Listen = tc.listen
		var buf bytes.Buffer
		d := &Daemon{log: zerolog.New(&buf), metrics: newMetrics()}
		d.cfg.Store(cfg)
		srv, err := d.startHTTP()
		if err != nil {
			if strings.Contains(tc.listen, "::1") {
				continue // no IPv6 loopback here
			}
			t.Fatal(err)
		}
		srv.close()
		warned := strings.Contains(buf.String(), `"level":"warn"`) && strings.Contains(buf.String(), "not a loopback address")
		if warned != tc.warn {
			t.Errorf("http.listen %s: warning %v, want %v; log:\n%s", tc.listen, warned, tc.warn, buf.String())
		}
	}
}

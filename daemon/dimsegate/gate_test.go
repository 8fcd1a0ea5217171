package dimsegate

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// fakeUpstream is a TCP peer standing in for the receiver: it records
// every connection's bytes up to the sender's close, answers each with
// reply, and then closes.
type fakeUpstream struct {
	ln    net.Listener
	reply []byte
	mu    sync.Mutex
	got   [][]byte
	conns int
	done  chan struct{}
}

func startFakeUpstream(t *testing.T, reply []byte) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{ln: ln, reply: reply, done: make(chan struct{}, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // up to the gate's half-close
				u.mu.Lock()
				u.got = append(u.got, b)
				u.mu.Unlock()
				_, _ = c.Write(u.reply)
				u.done <- struct{}{}
			}()
		}
	}()
	return u
}

func (u *fakeUpstream) connections() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

// testGate starts a gate on a loopback port with cfg (Log, Registerer
// and limits filled in when unset) and returns its address and registry.
func testGate(t *testing.T, cfg Config) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	cfg.Log = zerolog.New(zerolog.NewTestWriter(t))
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = 5 * time.Second
	}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), reg
}

// metricValue reads one counter or gauge from reg (label "reason" when
// reason is not empty).
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := reason == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

// exchange dials addr, sends req, and returns everything the gate sends
// back until it closes.
func exchange(t *testing.T, addr string, req []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if len(req) > 0 {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := io.ReadAll(c) // a reset after the answer still returns the answer
	return got
}

// TestGatePassesAllowedAssociation: an allowed calling AE from an
// allowed address reaches the receiver with the request byte for byte and
// everything after it; the receiver's answer comes back after the
// sender's half-close, and the receiver's close ends the connection.
func TestGatePassesAllowedAssociation(t *testing.T) {
	up := startFakeUpstream(t, []byte("answer from the receiver"))
	addr, reg := testGate(t, Config{
		Upstream:  up.ln.Addr().String(),
		AllowAETs: []string{"PACS", "MODALITY1"},
		AllowNets: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		CalledAET: "TMCAD",
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkPassesThrough(t, c.(*net.TCPConn), up, reg, "unchanged")
}

// checkPassesThrough sends an A-ASSOCIATE-RQ from PACS to TMCAD and more
// than a socket buffer after it on c, then half-closes c: the answer must
// still come back. It checks that the sender gets up's reply, that up got
// the request and what followed byte for byte (how: in which form, for
// the error), and that the gate counted one accepted association.
func checkPassesThrough(t *testing.T, c halfCloser, up *fakeUpstream, reg *prometheus.Registry, how string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	rq := buildRQ("TMCAD", "PACS", appContextItem)
	after := bytes.Repeat([]byte("P-DATA "), 50000)
	go func() {
		_, _ = c.Write(rq)
		_, _ = c.Write(after)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(up.reply) {
		t.Errorf("the sender got %q, want the receiver's answer", got)
	}
	<-up.done
	up.mu.Lock()
	sent := up.got[0]
	up.mu.Unlock()
	if want := append(append([]byte{}, rq...), after...); !bytes.Equal(sent, want) {
		t.Errorf("the receiver got %d bytes, want the request and what followed (%d bytes) %s", len(sent), len(want), how)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != 1 {
		t.Errorf("accepted counter %v, want 1", v)
	}
}

// TestGateRejectsAETitles: a calling AE title not in the list gets
// A-ASSOCIATE-RJ reason 3, a called AE title other than the receiver's
// reason 7; neither reaches the receiver.
func TestGateRejectsAETitles(t *testing.T) {
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, CalledAET: "TMCAD"})
	for _, tc := range []struct {
		called, calling string
		reason          byte
		label           string
	}{
		{"TMCAD", "INTRUDER", RJReasonCallingAENotRecognized, ReasonCallingAE},
		{"TMCAD", "pacs", RJReasonCallingAENotRecognized, ReasonCallingAE}, // AE titles are case-sensitive
		{"OTHER", "PACS", RJReasonCalledAENotRecognized, ReasonCalledAE},
	} {
		got := exchange(t, addr, buildRQ(tc.called, tc.calling, appContextItem))
		want := AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, tc.reason)
		if !bytes.Equal(got, want) {
			t.Errorf("called %s calling %s: got % x, want A-ASSOCIATE-RJ % x", tc.called, tc.calling, got, want)
		}
	}
	if n := up.connections(); n != 0 {
		t.Errorf("%d rejected association(s) reached the receiver", n)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonCallingAE); v != 2 {
		t.Errorf("refused{calling_ae} = %v, want 2", v)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonCalledAE); v != 1 {
		t.Errorf("refused{called_ae} = %v, want 1", v)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_accepted_total", ""); v != 0 {
		t.Errorf("accepted counter %v, want 0", v)
	}
}

// TestGateRefusesAddress: a peer outside the allowed networks is
// disconnected without an answer, whatever its AE title.
func TestGateRefusesAddress(t *testing.T) {
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{
		Upstream:  up.ln.Addr().String(),
		AllowAETs: []string{"PACS"},
		AllowNets: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	})
	if got := exchange(t, addr, buildRQ("TMCAD", "PACS", appContextItem)); len(got) != 0 {
		t.Errorf("a refused address got % x, want nothing", got)
	}
	if n := up.connections(); n != 0 {
		t.Errorf("%d connection(s) from a refused address reached the receiver", n)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonAddress); v != 1 {
		t.Errorf("refused{address} = %v, want 1", v)
	}
}

// TestGateAbortsGarbage: a first PDU that is not an A-ASSOCIATE-RQ, or
// one of implausible length, gets an A-ABORT and is not passed on.
func TestGateAbortsGarbage(t *testing.T) {
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}})
	for _, tc := range []struct {
		name   string
		req    []byte
		reason byte
	}{
		{"HTTP request", []byte("GET / HTTP/1.0\r\n\r\n"), abortUnrecognizedPDU},
		{"P-DATA first", append([]byte{0x04, 0, 0, 0, 0, 10}, make([]byte, 10)...), abortUnexpectedPDU},
		{"RQ of 1 MiB", []byte{0x01, 0, 0, 0x10, 0, 0}, abortInvalidParamValue},
	} {
		if got, want := exchange(t, addr, tc.req), abortPDU(tc.reason); !bytes.Equal(got, want) {
			t.Errorf("%s: got % x, want A-ABORT % x", tc.name, got, want)
		}
	}
	if n := up.connections(); n != 0 {
		t.Errorf("%d garbage connection(s) reached the receiver", n)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonMalformed); v != 3 {
		t.Errorf("refused{malformed} = %v, want 3", v)
	}
}

// TestGateRequestTimeout: a peer that connects and sends nothing is
// disconnected once the request timeout passes; one that closes at once
// is counted too.
func TestGateRequestTimeout(t *testing.T) {
	up := startFakeUpstream(t, nil)
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, RequestTimeout: 200 * time.Millisecond})
	if got := exchange(t, addr, nil); len(got) != 0 {
		t.Errorf("a silent peer got % x, want nothing", got)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, func() bool { return metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonNoRequest) == 2 })
	if n := up.connections(); n != 0 {
		t.Errorf("%d connection(s) without a request reached the receiver", n)
	}
}

// TestGateMaxConns: with the limit reached, a further connection is
// closed at once; once a slot frees, connections are served again.
func TestGateMaxConns(t *testing.T) {
	up := startFakeUpstream(t, []byte("ok"))
	addr, reg := testGate(t, Config{Upstream: up.ln.Addr().String(), AllowAETs: []string{"PACS"}, MaxConns: 1})
	hold, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return metricValue(t, reg, "tmcad_dicom_gate_connections", "") == 1 })
	if got := exchange(t, addr, buildRQ("TMCAD", "PACS", appContextItem)); len(got) != 0 {
		t.Errorf("a connection beyond the limit got % x, want nothing", got)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonMaxConns); v != 1 {
		t.Errorf("refused{max_conns} = %v, want 1", v)
	}
	hold.Close()
	waitFor(t, func() bool { return metricValue(t, reg, "tmcad_dicom_gate_connections", "") == 0 })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	_, _ = c.Write(buildRQ("TMCAD", "PACS", appContextItem))
	_ = c.(*net.TCPConn).CloseWrite()
	if got, _ := io.ReadAll(c); string(got) != "ok" {
		t.Errorf("after the slot freed: got %q, want the receiver's answer", got)
	}
}

// TestGateUpstreamDown: with the receiver not listening, an allowed
// association gets a transient rejection (the sender may retry).
func TestGateUpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	addr, reg := testGate(t, Config{Upstream: dead, AllowAETs: []string{"PACS"}})
	got := exchange(t, addr, buildRQ("TMCAD", "PACS", appContextItem))
	if want := AssociateRJ(RJRejectedTransient, RJSourceProviderPresentation, RJReasonTemporaryCongestion); !bytes.Equal(got, want) {
		t.Errorf("got % x, want A-ASSOCIATE-RJ % x", got, want)
	}
	if v := metricValue(t, reg, "tmcad_dicom_gate_refused_total", ReasonUpstream); v != 1 {
		t.Errorf("refused{upstream} = %v, want 1", v)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{AllowAETs: []string{"PACS"}}, "no upstream"},
		{Config{Upstream: "127.0.0.1"}, "upstream"},
		{Config{Upstream: "127.0.0.1:1"}, "neither"},
		{Config{Upstream: "127.0.0.1:1", AllowAETs: []string{"WAY_TOO_LONG_AE_TITLE"}}, "1 to 16"},
		{Config{Upstream: "127.0.0.1:1", AllowAETs: []string{"PACS"}, CalledAET: `A\B`}, "called AE title"},
		{Config{Upstream: "127.0.0.1:1", AllowNets: []netip.Prefix{{}}}, "not a valid prefix"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Package dimsegate is an association gate for a DICOM receiver that
// cannot restrict its senders itself (dcmtk's storescp): a TCP front on
// the public port that checks each connection's peer address against a
// CIDR allow-list, reads the first PDU (an A-ASSOCIATE-RQ), checks the
// calling AE title against an allow-list and, optionally, the called AE
// title against the receiver's, and then either answers A-ASSOCIATE-RJ or
// hands the connection, the request included, to the receiver listening
// on loopback, copying both directions until either side closes.
//
// With a TLS configuration the gate is the TLS end of DICOM TLS (PS3.15
// Annex B): it completes the handshake (and, for mutual TLS, verifies the
// client's certificate) before it reads the request, applies the same
// checks to the decrypted request, and passes plaintext to the receiver
// on loopback.
//
// The gate never interprets anything after the request: the receiver does
// the whole association (C-ECHO, C-STORE, release). It logs refused
// associations with the peer address and the AE titles (AE titles name
// devices, not patients) and counts accepted and refused ones in
// Prometheus counters.
package dimsegate

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults for the zero values of Config's limits.
const (
	// DefaultMaxConns is the default limit of connections served at once.
	DefaultMaxConns = 32
	// DefaultRequestTimeout is the default time a peer has, once
	// connected, to send its A-ASSOCIATE-RQ.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultDialTimeout is the default time to connect to the receiver.
	DefaultDialTimeout = 5 * time.Second
	// DefaultCloseGrace is the default time the other direction of a
	// spliced connection may go on after one side has finished sending,
	// and the time Serve waits for associations in progress when it stops.
	DefaultCloseGrace = 20 * time.Second
)

// Refusal reasons, the values of the refused counter's "reason" label.
const (
	// ReasonAddress: the peer address is not in the allow-list.
	ReasonAddress = "address"
	// ReasonCallingAE: the calling AE title is not in the allow-list.
	ReasonCallingAE = "calling_ae"
	// ReasonCalledAE: the called AE title is not the receiver's.
	ReasonCalledAE = "called_ae"
	// ReasonMalformed: the first PDU is not an A-ASSOCIATE-RQ of
	// plausible size.
	ReasonMalformed = "malformed"
	// ReasonNoRequest: the peer sent no complete request in time.
	ReasonNoRequest = "no_request"
	// ReasonMaxConns: the limit of connections at once was reached.
	ReasonMaxConns = "max_conns"
	// ReasonUpstream: the receiver behind the gate could not be reached.
	ReasonUpstream = "upstream"
	// ReasonTLS: on a TLS gate, a plaintext connection or a failed TLS
	// handshake (no client certificate, one not issued by the client CA,
	// no common protocol version or cipher suite).
	ReasonTLS = "tls"
)

// Config describes a gate. Upstream is required, and at least one
// allow-list or TLS; the zero values of the limits select the defaults.
type Config struct {
	// Upstream is the receiver's host:port, normally on loopback.
	Upstream string
	// AllowAETs are the calling AE titles let through; empty lets any
	// calling AE title through.
	AllowAETs []string
	// AllowNets are the peer address ranges let through; empty lets any
	// address through.
	AllowNets []netip.Prefix
	// CalledAET, when set, is the only called AE title let through (the
	// receiver's own).
	CalledAET string
	// TLS, when set, makes the gate accept DICOM TLS only (see
	// ServerTLSConfig); plaintext connections are refused. A TLS
	// configuration with ClientAuth set to verify client certificates
	// lets through only senders with a certificate from its ClientCAs.
	TLS *tls.Config
	// MaxConns limits the connections served at once; the ones beyond
	// are closed at once.
	MaxConns int
	// RequestTimeout bounds the wait for the A-ASSOCIATE-RQ.
	RequestTimeout time.Duration
	// DialTimeout bounds the connection to Upstream.
	DialTimeout time.Duration
	// CloseGrace bounds a half-closed connection and the drain on stop.
	CloseGrace time.Duration
	// Log receives one line per refused association (Warn) and per
	// accepted one (Info).
	Log zerolog.Logger
	// Registerer, when set, receives the gate's metrics.
	Registerer prometheus.Registerer
}

// Gate is a running association gate; see the package documentation.
type Gate struct {
	cfg       Config
	allowAETs map[string]bool
	sem       chan struct{}
	dialer    net.Dialer

	accepted prometheus.Counter
	refused  *prometheus.CounterVec
	active   prometheus.Gauge

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// New validates cfg and returns a gate that Serve runs.
func New(cfg Config) (*Gate, error) {
	if cfg.Upstream == "" {
		return nil, errors.New("dicom gate: no upstream receiver address (host:port)")
	}
	if _, _, err := net.SplitHostPort(cfg.Upstream); err != nil {
		return nil, fmt.Errorf("dicom gate: upstream %q: %w", cfg.Upstream, err)
	}
	if len(cfg.AllowAETs) == 0 && len(cfg.AllowNets) == 0 && cfg.TLS == nil {
		return nil, errors.New("dicom gate: neither calling AE titles nor networks to allow, nor TLS; without any the gate checks nothing")
	}
	if cfg.TLS != nil && len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil {
		return nil, errors.New("dicom gate: the TLS configuration has no server certificate")
	}
	g := &Gate{cfg: cfg, allowAETs: map[string]bool{}, conns: map[net.Conn]struct{}{}}
	for _, ae := range cfg.AllowAETs {
		if err := ValidAETitle(ae); err != nil {
			return nil, fmt.Errorf("dicom gate: allowed calling %w", err)
		}
		g.allowAETs[strings.TrimSpace(ae)] = true
	}
	if cfg.CalledAET != "" {
		if err := ValidAETitle(cfg.CalledAET); err != nil {
			return nil, fmt.Errorf("dicom gate: called %w", err)
		}
		g.cfg.CalledAET = strings.TrimSpace(cfg.CalledAET)
	}
	for i, p := range cfg.AllowNets {
		if !p.IsValid() {
			return nil, fmt.Errorf("dicom gate: allowed network %d is not a valid prefix", i+1)
		}
	}
	if g.cfg.MaxConns <= 0 {
		g.cfg.MaxConns = DefaultMaxConns
	}
	if g.cfg.RequestTimeout <= 0 {
		g.cfg.RequestTimeout = DefaultRequestTimeout
	}
	if g.cfg.DialTimeout <= 0 {
		g.cfg.DialTimeout = DefaultDialTimeout
	}
	if g.cfg.CloseGrace <= 0 {
		g.cfg.CloseGrace = DefaultCloseGrace
	}
	g.sem = make(chan struct{}, g.cfg.MaxConns)
	g.dialer = net.Dialer{Timeout: g.cfg.DialTimeout}
	g.accepted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tmcad_dicom_gate_accepted_total",
		Help: "Associations the DICOM gate passed to the receiver.",
	})
	g.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tmcad_dicom_gate_refused_total",
		Help: "Connections the DICOM gate refused, by reason (address, calling_ae, called_ae, malformed, no_request, max_conns, upstream, tls).",
	}, []string{"reason"})
	for _, r := range []string{ReasonAddress, ReasonCallingAE, ReasonCalledAE, ReasonMalformed, ReasonNoRequest, ReasonMaxConns, ReasonUpstream, ReasonTLS} {
		g.refused.WithLabelValues(r)
	}
	g.active = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tmcad_dicom_gate_connections",
		Help: "Connections the DICOM gate is serving now.",
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{g.accepted, g.refused, g.active} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("dicom gate: registering metrics: %w", err)
			}
		}
	}
	return g, nil
}

// Serve accepts connections on ln until ctx is done, then closes ln,
// waits up to CloseGrace for the associations in progress and cuts the
// rest. It returns nil on a stop through ctx, or the accept error.
func (g *Gate) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var err error
	for {
		var c net.Conn
		c, err = ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				err = nil
				break
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			err = fmt.Errorf("dicom gate: accepting on %s: %w", ln.Addr(), err)
			break
		}
		select {
		case g.sem <- struct{}{}:
			g.track(c)
			go g.handle(c)
		default:
			g.refuse(c, ReasonMaxConns, nil, "connection refused: the limit of connections at once is reached")
			_ = c.Close()
		}
	}
	g.drain()
	return err
}

// drain waits for the connections in progress up to CloseGrace, then
// closes them.
func (g *Gate) drain() {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(g.cfg.CloseGrace):
	}
	g.mu.Lock()
	for c := range g.conns {
		_ = c.Close()
	}
	g.mu.Unlock()
	<-done
}

func (g *Gate) track(c net.Conn) {
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.wg.Add(1)
	g.active.Inc()
}

func (g *Gate) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	g.active.Dec()
	<-g.sem
	g.wg.Done()
}

// peerAddr is the connection's remote IP, IPv4-mapped forms unmapped.
func peerAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// addressAllowed reports whether ip is in the allow-list (any address
// when the list is empty).
func (g *Gate) addressAllowed(ip netip.Addr) bool {
	if len(g.cfg.AllowNets) == 0 {
		return true
	}
	for _, p := range g.cfg.AllowNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refuse logs and counts one refused connection.
func (g *Gate) refuse(c net.Conn, reason string, rq *AssociateRQ, msg string) {
	g.refused.WithLabelValues(reason).Inc()
	ev := g.cfg.Log.Warn()
	if reason == ReasonNoRequest {
		ev = g.cfg.Log.Info()
	}
	ev = ev.Str("remote", peerAddr(c).String()).Str("reason", reason)
	if rq != nil {
		ev = ev.Str("calling_aet", rq.CallingAE).Str("called_aet", rq.CalledAE)
	}
	ev.Msg("DICOM association refused: " + msg)
}

// handle serves one connection: the address check, the TLS handshake on a
// TLS gate, the checks of the request, then the answer or the splice to
// the receiver.
func (g *Gate) handle(raw net.Conn) {
	defer g.untrack(raw)
	defer raw.Close()
	if !g.addressAllowed(peerAddr(raw)) {
		g.refuse(raw, ReasonAddress, nil, "peer address not allowed")
		return
	}
	// The request timeout covers the TLS handshake and the request.
	_ = raw.SetDeadline(time.Now().Add(g.cfg.RequestTimeout))
	c, subject := raw, ""
	if g.cfg.TLS != nil {
		tc := g.startTLS(raw)
		if tc == nil {
			return
		}
		defer tc.Close()
		c, subject = tc, clientSubject(tc)
	}
	rq, err := ReadAssociateRQ(c)
	if err != nil {
		var pe *pduError
		if errors.As(err, &pe) {
			g.refuse(c, ReasonMalformed, nil, pe.msg)
			g.answer(c, abortPDU(pe.abortReason))
			return
		}
		g.refuse(c, ReasonNoRequest, nil, err.Error())
		return
	}
	if len(g.allowAETs) > 0 && !g.allowAETs[rq.CallingAE] {
		g.refuse(c, ReasonCallingAE, rq, "calling AE title not allowed")
		g.answer(c, AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonCallingAENotRecognized))
		return
	}
	if g.cfg.CalledAET != "" && rq.CalledAE != g.cfg.CalledAET {
		g.refuse(c, ReasonCalledAE, rq, "called AE title is not this receiver's")
		g.answer(c, AssociateRJ(RJRejectedPermanent, RJSourceServiceUser, RJReasonCalledAENotRecognized))
		return
	}
	up, err := g.dialer.Dial("tcp", g.cfg.Upstream)
	if err != nil {
		g.refuse(c, ReasonUpstream, rq, "the receiver behind the gate is not reachable: "+err.Error())
		g.answer(c, AssociateRJ(RJRejectedTransient, RJSourceProviderPresentation, RJReasonTemporaryCongestion))
		return
	}
	defer up.Close()
	_ = c.SetDeadline(time.Time{})
	if _, err := up.Write(rq.Raw); err != nil {
		g.refuse(c, ReasonUpstream, rq, "passing the request to the receiver failed: "+err.Error())
		g.answer(c, AssociateRJ(RJRejectedTransient, RJSourceProviderPresentation, RJReasonTemporaryCongestion))
		return
	}
	g.accepted.Inc()
	lc := g.cfg.Log.With().Str("remote", peerAddr(c).String()).Str("calling_aet", rq.CallingAE).Str("called_aet", rq.CalledAE)
	if subject != "" {
		lc = lc.Str("client_cert", subject)
	}
	log := lc.Logger()
	log.Info().Msg("DICOM association passed to the receiver")
	start := time.Now()
	in, out := splice(c, up, g.cfg.CloseGrace)
	log.Debug().Int64("bytes_in", in).Int64("bytes_out", out).Dur("took", time.Since(start)).Msg("DICOM connection closed")
}

// answer sends a refusal PDU, stops sending, and reads what the peer
// still sends (up to a limit, for a short while) so that the close does
// not reset the connection before the peer has read the answer.
func (g *Gate) answer(c net.Conn, pdu []byte) {
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(pdu); err != nil {
		return
	}
	if hc, ok := c.(halfCloser); ok {
		_ = hc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.CopyN(io.Discard, c, MaxRQLength)
}

// halfCloser is a connection whose sending side can be closed alone.
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies a→b and b→a until both directions end. A direction that
// ends with the sender's close half-closes the other connection's
// sending side and leaves the other direction grace to finish; one that
// fails closes both connections. It returns the bytes copied a→b and b→a.
func splice(a, b net.Conn, grace time.Duration) (ab, ba int64) {
	var wg sync.WaitGroup
	var once sync.Once
	closeBoth := func() { once.Do(func() { _ = a.Close(); _ = b.Close() }) }
	dir := func(dst, src net.Conn, n *int64) {
		defer wg.Done()
		var err error
		*n, err = io.Copy(dst, src)
		if err != nil {
			closeBoth()
			return
		}
		if hc, ok := dst.(halfCloser); ok {
			if hc.CloseWrite() != nil {
				closeBoth()
				return
			}
		} else {
			closeBoth()
			return
		}
		// The other direction reads from dst; bound it.
		_ = dst.SetReadDeadline(time.Now().Add(grace))
	}
	wg.Add(2)
	go dir(b, a, &ab)
	go dir(a, b, &ba)
	wg.Wait()
	closeBoth()
	return ab, ba
}

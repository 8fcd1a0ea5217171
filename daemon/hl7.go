package daemon

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"tmcad/config"
	"tmcad/reports"
	"tmcad/reports/mllp"
)

// hl7Versions are the HL7 v2 versions whose ORU^R01 the listener accepts.
var hl7Versions = map[string]bool{"2.3": true, "2.3.1": true, "2.4": true, "2.5": true, "2.5.1": true}

// hl7Server receives HL7 v2 ORU^R01 messages over MLLP (hl7.listen) and
// stores each one, durably, as <sha256>.hl7 in the reports folder before
// it answers AA; the watcher and ingest then read it like any report file.
// A message that cannot be read is answered AE, one of a type, event,
// version or processing ID it does not take AR, both with the reason in
// MSA-3 and ERR. It logs addresses, hashes and outcomes, never message
// content, control IDs or file names given by the sender.
type hl7Server struct {
	log     zerolog.Logger
	ln      net.Listener
	addr    string
	allow   []netip.Prefix
	idle    time.Duration
	maxMsg  int
	maxConn int
	dir     string
	src     *reports.HL7Source
	metrics *hl7Metrics

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	done    chan struct{}
}

// startHL7 starts the MLLP listener when hl7.listen is set; it returns
// nil, nil when it is not.
func (d *Daemon) startHL7() (*hl7Server, error) {
	cfg := d.config()
	h := cfg.HL7
	if h.Listen == "" {
		return nil, nil
	}
	allow, err := config.HL7AllowPrefixes(h.Allow)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Watch.ReportsDir)
	if err != nil {
		return nil, fmt.Errorf("watch.reports_dir: %w", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("hl7.listen: the reports folder %s (watch.reports_dir), where received reports are stored, is not a folder: %v", dir, err)
	}
	var tlsCfg *tls.Config
	if h.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(h.TLSCert, h.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("hl7.tls_cert, hl7.tls_key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", h.Listen)
	if err != nil {
		return nil, fmt.Errorf("hl7.listen %s: %w", h.Listen, err)
	}
	s := &hl7Server{
		log: d.log.With().Str("component", "hl7").Logger(), addr: ln.Addr().String(),
		allow: allow, idle: h.IdleTimeout.Duration, maxMsg: h.MaxMessageBytes, maxConn: h.MaxConnections,
		dir: dir, src: &reports.HL7Source{Options: d.opts.Reports}, metrics: d.metrics.hl7,
		conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
	}
	s.ln = ln
	go s.serve(tlsCfg)
	s.log.Info().Str("listen", s.addr).Bool("tls", tlsCfg != nil).Strs("allow", h.Allow).Msg("receiving HL7 v2 ORU^R01 over MLLP")
	return s, nil
}

// serve accepts connections until the listener is closed.
func (s *hl7Server) serve(tlsCfg *tls.Config) {
	defer close(s.done)
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Error().Err(err).Msg("accepting an HL7 connection")
			time.Sleep(100 * time.Millisecond)
			continue
		}
		peer := remoteAddr(conn)
		if !s.allowed(peer) {
			s.log.Warn().Str("remote", peer.String()).Msg("HL7 connection refused: address not in hl7.allow")
			s.metrics.refused.WithLabelValues(hl7RefusedAddr).Inc()
			conn.Close()
			continue
		}
		if ok, closing := s.track(conn); !ok {
			if !closing {
				s.log.Warn().Str("remote", peer.String()).Int("max_connections", s.maxConn).Msg("HL7 connection refused: hl7.max_connections reached")
				s.metrics.refused.WithLabelValues(hl7RefusedMaxCon).Inc()
			}
			conn.Close()
			continue
		}
		if tlsCfg != nil {
			conn = tls.Server(conn, tlsCfg)
		}
		go s.handle(conn, peer)
	}
}

// remoteAddr is the peer's IP address (IPv4-mapped forms unmapped).
func remoteAddr(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// allowed reports whether ip is in hl7.allow.
func (s *hl7Server) allowed(ip netip.Addr) bool {
	for _, p := range s.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// track registers a connection; ok is false when the listener is
// closing (closing is then true) or serves hl7.max_connections already.
func (s *hl7Server) track(c net.Conn) (ok, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false, true
	}
	if len(s.conns) >= s.maxConn {
		return false, false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.metrics.connections.Inc()
	return true, false
}

// untrack forgets a connection that ended.
func (s *hl7Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.metrics.connections.Dec()
	s.mu.Unlock()
	s.wg.Done()
}

// handle serves one connection: any number of messages, each answered
// before the next is read, until the peer closes it, it stays idle for
// hl7.idle_timeout, or the daemon stops.
func (s *hl7Server) handle(conn net.Conn, peer netip.Addr) {
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	defer s.untrack(raw)
	defer conn.Close()
	log := s.log.With().Str("remote", peer.String()).Logger()
	rd := mllp.NewReader(conn, s.maxMsg)
	n := 0
	for {
		if err := conn.SetReadDeadline(time.Now().Add(s.idle)); err != nil {
			return
		}
		// Checked after the deadline is set: close sets a deadline in the
		// past after it sets closing, so one of the two stops this read.
		if s.closing.Load() {
			return
		}
		msg, err := rd.ReadMessage()
		var ne net.Error
		switch {
		case err == nil, errors.Is(err, mllp.ErrTooLarge):
		case errors.Is(err, io.EOF):
			log.Debug().Int("messages", n).Msg("HL7 connection closed by the sender")
			return
		case errors.Is(err, mllp.ErrTruncated):
			log.Warn().Int("messages", n).Msg("HL7 sender disconnected inside a message; nothing of it was stored or acknowledged")
			return
		case errors.As(err, &ne) && ne.Timeout():
			if !s.closing.Load() {
				log.Info().Int("messages", n).Dur("idle_timeout", s.idle).Msg("HL7 connection idle; closed")
			}
			return
		default:
			log.Warn().Err(err).Int("messages", n).Msg("HL7 connection dropped")
			return
		}
		n++
		ack := s.answer(log, msg, err)
		if err := conn.SetWriteDeadline(time.Now().Add(s.idle)); err != nil {
			return
		}
		if err := mllp.WriteMessage(conn, ack); err != nil {
			log.Warn().Err(err).Msg("sending the HL7 acknowledgement failed; the sender will send the message again")
			return
		}
	}
}

// answer handles one message (or the head of an overlong one, readErr
// ErrTooLarge) and returns the acknowledgement to send; it counts the
// answer, and the reason of a refusal.
func (s *hl7Server) answer(log zerolog.Logger, msg []byte, readErr error) []byte {
	ackID := newAckID()
	h, err := mllp.ParseHeader(msg)
	nack := func(code mllp.Code, ec mllp.ErrorCode, metric, reason string) []byte {
		log.Warn().Str("ack", string(code)).Int("hl7_error", int(ec)).Str("reason", reason).Msg("HL7 message not accepted")
		s.metrics.messages.WithLabelValues(string(code)).Inc()
		s.metrics.rejected.WithLabelValues(metric).Inc()
		return mllp.BuildACK(h, mllp.Ack{Code: code, Error: ec, Text: reason, ControlID: ackID})
	}
	switch {
	case err != nil:
		return nack(mllp.AR, mllp.SegmentSequenceError, hl7NoMSH, "the message does not start with a valid MSH segment")
	case readErr != nil:
		return nack(mllp.AR, mllp.ApplicationInternalError, hl7TooLarge, fmt.Sprintf("message longer than hl7.max_message_bytes (%d bytes)", s.maxMsg))
	case h.MessageType != "ORU":
		return nack(mllp.AR, mllp.UnsupportedMessageType, hl7MessageType, "message type "+safeToken(h.MessageType)+" is not accepted; this receiver takes ORU^R01")
	case h.TriggerEvent != "R01":
		return nack(mllp.AR, mllp.UnsupportedEventCode, hl7Event, "event "+safeToken(h.TriggerEvent)+" is not accepted; this receiver takes ORU^R01")
	case !hl7Versions[h.Version]:
		return nack(mllp.AR, mllp.UnsupportedVersionID, hl7Version, "HL7 version "+safeToken(h.Version)+" is not accepted (2.3 to 2.5.1)")
	case h.ProcessingID == "T":
		return nack(mllp.AR, mllp.UnsupportedProcessingID, hl7ProcessingID, "training messages (MSH-11 T) are not accepted")
	}
	reps, err := s.src.Parse("mllp", msg)
	if err != nil {
		// The parser's errors name fields and formats, never values.
		reason := err.Error()
		if i := strings.Index(reason, ": "); i >= 0 && strings.HasPrefix(reason, "hl7 report mllp") {
			reason = reason[i+2:]
		}
		return nack(mllp.AE, mllp.DataTypeError, hl7Parse, reason)
	}
	sum := sha256.Sum256(msg)
	name := hex.EncodeToString(sum[:]) + ".hl7"
	if err := storeDurably(s.dir, name, msg); err != nil {
		log.Error().Err(err).Msg("storing an HL7 message failed; answered AR so that the sender tries again")
		s.metrics.messages.WithLabelValues(string(mllp.AR)).Inc()
		s.metrics.storeErrors.Inc()
		return mllp.BuildACK(h, mllp.Ack{Code: mllp.AR, Error: mllp.ApplicationInternalError, Text: "the receiver could not store the message; send it again later", ControlID: ackID})
	}
	log.Info().Str("message_sha256", name[:16]).Int("reports", len(reps)).Str("version", h.Version).Msg("HL7 report received and stored")
	s.metrics.messages.WithLabelValues(string(mllp.AA)).Inc()
	return mllp.BuildACK(h, mllp.Ack{Code: mllp.AA, ControlID: ackID})
}

// safeToken keeps a header value fit for a log line and an MSA text: at
// most 16 characters of letters, digits, '.', '_' and '^'.
func safeToken(v string) string {
	if v == "" {
		return "(empty)"
	}
	b := []byte(v)
	if len(b) > 16 {
		b = b[:16]
	}
	for i, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' || c == '_') {
			b[i] = '?'
		}
	}
	return string(b)
}

// newAckID returns a fresh control ID for an acknowledgement (20 hex
// digits, the length MSH-10 allows).
func newAckID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// storeDurably writes data as dir/name: a temporary file (a dot name the
// watcher ignores), fsynced, renamed into place, the folder fsynced. A
// file already there is the same message (the name is its hash), sent
// again because its acknowledgement was lost; it is kept.
func storeDurably(dir, name string, data []byte) error {
	final := filepath.Join(dir, name)
	if st, err := os.Stat(final); err == nil && st.Mode().IsRegular() && st.Size() == int64(len(data)) {
		return nil
	}
	tmp, err := os.CreateTemp(dir, ".hl7-*.part")
	if err != nil {
		return fmt.Errorf("hl7: temporary file in the reports folder: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("hl7: writing %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("hl7: fsync %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("hl7: closing %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("hl7: chmod %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("hl7: moving %s into place: %w", name, err)
	}
	df, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("hl7: fsync of the reports folder: %w", err)
	}
	defer df.Close()
	if err := df.Sync(); err != nil {
		return fmt.Errorf("hl7: fsync of the reports folder: %w", err)
	}
	return nil
}

// close stops accepting, lets each connection finish the message it is
// answering (up to 10 seconds), and closes them all.
func (s *hl7Server) close() {
	s.mu.Lock()
	s.closing.Store(true)
	for c := range s.conns {
		// Wakes a connection waiting for its next message; one inside a
		// message is cut off (nothing of it stored, the sender sends it
		// again).
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	_ = s.ln.Close()
	<-s.done
	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-waited
	}
	s.log.Info().Msg("HL7 listener stopped")
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpServer serves /healthz, /readyz and /metrics.
type httpServer struct {
	srv  *http.Server
	done chan struct{}
	addr string
}

// Handler returns the daemon's HTTP handler: /healthz (200 while the
// loops are alive), /readyz (200 once the model is loaded and the queue is
// up; 503 while starting or draining, while the catalogue cannot be
// written or the archive cannot be reached, or while ingestion is paused
// because the queue or the outbox reached its limit, with the reasons one
// a line) and /metrics.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !d.alive(30 * time.Second) {
			http.Error(w, "loops stalled\n", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !d.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		if reasons := d.NotReadyReasons(); len(reasons) > 0 {
			http.Error(w, "not ready: "+strings.Join(reasons, "\nnot ready: ")+"\n", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := d.store.Ping(ctx); err != nil {
			http.Error(w, "queue database unreachable\n", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	return mux
}

// startHTTP listens on http.listen (nothing when empty).
func (d *Daemon) startHTTP() (*httpServer, error) {
	addr := d.config().HTTP.Listen
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	s := &httpServer{srv: &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}, done: make(chan struct{}), addr: ln.Addr().String()}
	d.httpAddr.Store(s.addr)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error().Err(err).Msg("http server stopped")
		}
	}()
	d.log.Info().Str("listen", s.addr).Msg("serving /healthz, /readyz and /metrics")
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		// The endpoints have no authentication, and /metrics tells how busy
		// the site is and which model it runs.
		d.log.Warn().Str("listen", s.addr).Msg("http.listen is not a loopback address: /healthz, /readyz and /metrics, which need no authentication, are reachable from the network; bind to 127.0.0.1 unless a firewall or proxy guards them")
	}
	return s, nil
}

// close shuts the server down and waits for it.
func (s *httpServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// HTTPAddr returns the address the HTTP server listens on ("" if none).
func (d *Daemon) HTTPAddr() string {
	v, _ := d.httpAddr.Load().(string)
	return v
}

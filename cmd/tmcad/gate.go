package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tmcad/daemon/dimsegate"
	"tmcad/logging"
)

// listFlag is a repeatable flag whose values may also be comma or space
// separated lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		*l = append(*l, f)
	}
	return nil
}

// runGate runs the DICOM association gate (daemon/dimsegate) in front of a
// receiver such as dcmtk's storescp until SIGTERM or SIGINT.
func runGate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dicom-gate", "--upstream HOST:PORT (--allow-aet AE | --allow-net CIDR | --tls-cert FILE --tls-key FILE)...",
		"Listens for DICOM associations, refuses senders whose address or calling AE title is not\n"+
			"allowed (A-ASSOCIATE-RJ), and passes the others, unchanged, to the receiver at --upstream.\n"+
			"With --tls-cert and --tls-key it accepts DICOM TLS only (TLS 1.2+), and with --tls-client-ca\n"+
			"only senders whose certificate that CA issued; the receiver gets plaintext on loopback.\n"+
			"SIGTERM stops accepting and lets the associations in progress finish (up to --grace).", stderr)
	listen := fs.String("listen", ":11112", "address to accept associations on")
	upstream := fs.String("upstream", "", "the receiver's address, host:port (normally on loopback)")
	var aets, nets listFlag
	fs.Var(&aets, "allow-aet", "calling AE title allowed; repeatable or a comma list (none: any calling AE title)")
	fs.Var(&nets, "allow-net", "peer network allowed, CIDR or address; repeatable or a comma list (none: any address)")
	called := fs.String("called-aet", "", "the only called AE title accepted, the receiver's own (empty: any)")
	tlsCert := fs.String("tls-cert", "", "PEM certificate (chain) of the gate for DICOM TLS (with --tls-key; empty: no TLS)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	tlsClientCA := fs.String("tls-client-ca", "", "PEM bundle of the CAs that issue senders' certificates: require and verify one (mutual TLS; empty: none asked)")
	maxConns := fs.Int("max-conns", dimsegate.DefaultMaxConns, "connections served at once; further ones are closed")
	reqTimeout := fs.Duration("request-timeout", dimsegate.DefaultRequestTimeout, "time a peer has to send its association request")
	grace := fs.Duration("grace", dimsegate.DefaultCloseGrace, "time for associations in progress on stop, and for a half-closed connection")
	metricsAddr := fs.String("metrics-listen", "", "address to serve Prometheus /metrics on (empty: none)")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	logFormat := fs.String("log-format", "auto", "auto, json or console")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *upstream == "" {
		fs.Usage()
		return errUsage
	}
	base, err := logging.New(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	log := base.With().Str("component", "dicom-gate").Logger()
	prefixes, err := parseAllowNets(nets)
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	switch {
	case *tlsCert != "" || *tlsKey != "":
		if tlsCfg, err = dimsegate.ServerTLSConfig(*tlsCert, *tlsKey, *tlsClientCA); err != nil {
			return fmt.Errorf("--tls-cert, --tls-key: %w", err)
		}
	case *tlsClientCA != "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	reg := prometheus.NewRegistry()
	g, err := dimsegate.New(dimsegate.Config{
		Upstream: *upstream, AllowAETs: aets, AllowNets: prefixes, CalledAET: *called, TLS: tlsCfg,
		MaxConns: *maxConns, RequestTimeout: *reqTimeout, CloseGrace: *grace,
		Log: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-listen %s: %w", *metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("DICOM gate metrics server stopped")
			}
		}()
		defer srv.Close()
	}
	log.Info().Str("listen", ln.Addr().String()).Str("upstream", *upstream).Strs("allow_aet", aets).
		Strs("allow_net", nets).Str("called_aet", *called).Bool("tls", tlsCfg != nil).Bool("tls_client_cert_required", *tlsClientCA != "").
		Int("max_conns", *maxConns).Msg("DICOM gate accepting associations")
	if err := g.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info().Msg("DICOM gate stopped")
	return nil
}

// parseAllowNets parses --allow-net values: CIDR prefixes, or single
// addresses taken as /32 or /128.
func parseAllowNets(vals []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(vals))
	for _, v := range vals {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("--allow-net %q: not a CIDR prefix (10.1.0.0/16) or an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

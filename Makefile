# tmcad — see README.md. `make demo` and `make test` are all a new user needs.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
PY      := /usr/bin/python3
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# The Go suite shares 2 cores with PyTorch; keep Python's thread pools small.
export OMP_NUM_THREADS ?= 2

.PHONY: deps build demo test test-go test-py lint bench install eval-reports

## deps: install what is missing (Debian packages, Go modules, ONNX Runtime); quiet when nothing is
deps:
	@scripts/deps.sh

## build: the tmcad binary in bin/
build:
	@$(GO) build -ldflags "$(LDFLAGS)" -o bin/tmcad ./cmd/tmcad

## lint: gofmt, go vet, and go.mod tidy
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

## demo: segment the example studies, then their compressed copies in examples/compressed, with the shipped model; SEGs and PNG masks go to out/demo/ and out/demo/compressed/
demo: deps build
	@rm -rf out/demo
	bin/tmcad process --input examples/dicom --reports examples/reports --archive out/demo/archive --masks-png out/demo/masks --log-level warn
	bin/tmcad process --input examples/compressed/dicom --reports examples/compressed/reports --archive out/demo/compressed/archive --masks-png out/demo/compressed/masks --log-level warn

## test: everything — lint, the Go suite and the Python (model) suite (both run even if one fails)
test: deps lint build
	@status=0; $(MAKE) --no-print-directory test-go || status=1; $(MAKE) --no-print-directory test-py || status=1; exit $$status

test-go:
	$(GO) test -timeout 20m ./...

test-py:
	$(PY) -m pytest -q -p no:cacheprovider tmca/tests

## install: binary, ONNX Runtime, shipped model, config example and systemd units (DESTDIR, PREFIX)
PREFIX ?= /usr/local
install: build
	install -D -m 0755 bin/tmcad $(DESTDIR)$(PREFIX)/bin/tmcad
	install -D -m 0644 third_party/onnxruntime/libonnxruntime.so.1 $(DESTDIR)/usr/lib/tmcad/libonnxruntime.so.1
	install -d $(DESTDIR)/usr/share/tmcad/models/tmca-cxr-compact
	cp -r models/tmca-cxr-compact/. $(DESTDIR)/usr/share/tmcad/models/tmca-cxr-compact/
	install -D -m 0644 systemd/tmcad.example.toml $(DESTDIR)/usr/share/doc/tmcad/tmcad.example.toml
	install -D -m 0644 README.md $(DESTDIR)/usr/share/doc/tmcad/README.md
	install -D -m 0644 systemd/tmcad.service $(DESTDIR)/usr/lib/systemd/system/tmcad.service
	install -D -m 0644 systemd/tmcad.sysusers $(DESTDIR)/usr/lib/sysusers.d/tmcad.conf
	install -D -m 0644 systemd/tmcad.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/tmcad.conf
	install -D -m 0755 scripts/tmcad-receiver $(DESTDIR)$(PREFIX)/bin/tmcad-receiver
	install -D -m 0644 systemd/tmcad-receiver.service $(DESTDIR)/usr/lib/systemd/system/tmcad-receiver.service
	install -D -m 0644 systemd/tmcad-receiver.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/tmcad-receiver.conf

## eval-reports: Dice per report phrasing family through `tmcad process` (runs/report-eval); updates the model card
eval-reports: build
	$(PY) -m tmca.report_eval --tmcad bin/tmcad --model models/tmca-cxr-compact --seed 4712 --n 100 --out runs/report-eval --update-card

## bench: benchmarks; results go to bench/RESULTS.md
bench: deps build
	@scripts/bench.sh

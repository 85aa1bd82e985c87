# sysextd — build, test, package. `make test` is what CI runs (.ci/run).
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/spamtagger/sysextd/internal/cli.Version=$(VERSION)
BIN       := bin
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
FUZZTIME  ?= 10s

.PHONY: all build test lint unit e2e fuzz demo deb docs bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/sysextctl ./cmd/sysextd ./cmd/sysext-build

## test: everything CI runs — lint, unit + root integration tests (tier 1+2),
## short fuzzing of every parser, and the booted-container end-to-end suite (tier 3).
test: lint unit fuzz e2e

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./...

# Tier 1 (no root) and tier 2 (as root: real systemd-sysext in a private
# mount namespace; skipped loudly when not root).
unit:
	$(GO) test -count=1 ./...

# Every fuzz target, briefly; the seed corpora also run in `unit`.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null; \
	  done; done

# Tier 3: Debian trixie booted with systemd-nspawn (root only).
SHELL := /bin/bash

e2e:
	$(GO) test -count=1 -tags e2e -timeout 40m -v ./e2e/ 2>&1 | tee e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test\.go:[0-9]+:'; exit $${PIPESTATUS[0]}

demo:
	bash demo/run.sh

deb:
	bash packaging/build-deb.sh $(VERSION)

docs:
	$(GO) run ./packaging/gendocs packaging/build

bench:
	bash bench/run.sh

clean:
	rm -rf $(BIN) dist packaging/build e2e.log

# sysextd — build, test, package. `make test` is what CI runs (.ci/run).
#
# `make demo` and `make test` work on a fresh Debian 12/13 clone with Go:
# missing Debian packages are installed (as root) or named with the command
# that installs them (not root); staticcheck comes through go.mod's `tool`
# directive, so the Go module proxy is the only other download.
SHELL     := /bin/bash
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/spamtagger/sysextd/internal/buildinfo.Version=$(VERSION)
BIN       := bin
FUZZTIME  ?= 10s
# Reads `go test -json`; prints failures, one line per package and a closing
# count of skipped tests with their reasons.
SUMMARY   := $(GO) run ./internal/tools/testsummary
E2E_CACHE ?= /var/cache/sysextd-e2e

# Who runs make: root installs what is missing (override for tests only).
DEPS_UID ?= $(shell id -u)

# Every Debian package a target needs, in one place (add yours here).
#   squashfs-tools: mksquashfs (tests, demo)  debootstrap: e2e base
#   systemd-container: systemd-nspawn (e2e)   dbus: D-Bus in e2e and units tests
#   erofs-utils: mkfs.erofs (erofs images)     ca-certificates, curl: downloads
#   man-db: man pages checked (e2e)           bash-completion: completion checked (e2e)
#   git: version stamp, gofmt file list
#   minisign, gnupg: signatures made by the real tools verify (internal/trust)
#   apache2-bin: mod_dav, a real upload target for sysextctl mirror (no service)
APT_PACKAGES := squashfs-tools debootstrap systemd-container dbus erofs-utils \
	ca-certificates man-db bash-completion curl git minisign gnupg apache2-bin

# nginx is the other real upload target the tests use. Installing the
# package would start a web server on port 80, so its .deb is only
# unpacked here and put on the tests' PATH (it runs as a plain process).
TEST_CACHE ?= /var/cache/sysextd-test
NGINX_DIR := $(TEST_CACHE)/nginx
# Debian's docker-registry (CNCF distribution) is the real OCI registry the
# tests start on 127.0.0.1; unpacked like nginx, since installing it would
# start a registry service. oras, the client fleets push with, comes from
# the Go module proxy (internal/testutil/distribution finds both).
REGISTRY_DIR := $(TEST_CACHE)/docker-registry
ORAS_VERSION := v1.3.0

.PHONY: all build deps testservers test lint unit e2e fuzz demo deb docs bench clean distclean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/sysextctl ./cmd/sysextd ./cmd/sysext-build

## deps: install the Debian packages above that are missing (as root), or
## name them with the exact command to run (not root).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	missing=$$(echo $$missing); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(DEPS_UID)" = 0 ]; then \
	  echo "deps: installing $$missing (apt-get, from the Debian mirror)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "deps: missing Debian packages: $$missing"; \
	  echo "deps: install them with:  sudo apt-get install -y --no-install-recommends $$missing"; \
	  exit 1; \
	fi

## test: everything CI runs — lint, unit + root integration tests (tier 1+2),
## short fuzzing of every parser, and the booted-container end-to-end suite (tier 3).
test: lint unit fuzz e2e

lint: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./...
	$(GO) tool staticcheck ./...
	$(GO) tool staticcheck -tags e2e ./...

# Tier 1 (no root) and tier 2 (as root: real systemd-sysext in a private
# mount namespace). Skipped tests are counted, with their reasons, at the end.
unit: deps testservers
	set -o pipefail; PATH="$$PATH:$(NGINX_DIR)/usr/sbin" $(GO) test -json -count=1 ./... | $(SUMMARY)

## testservers: unpack Debian's nginx into $(NGINX_DIR) and docker-registry
## into $(REGISTRY_DIR) (as root; not installed, so no service starts), and
## go install oras, the independent OCI client, into $(TEST_CACHE)/bin.
testservers: deps $(REGISTRY_DIR)/usr/bin/docker-registry $(TEST_CACHE)/bin/oras
	@if command -v nginx >/dev/null || [ -x $(NGINX_DIR)/usr/sbin/nginx ] || [ "$(DEPS_UID)" != 0 ]; then exit 0; fi; \
	  echo "testservers: unpacking nginx into $(NGINX_DIR)"; \
	  rm -rf $(NGINX_DIR).tmp && mkdir -p $(NGINX_DIR).tmp/deb && cd $(NGINX_DIR).tmp/deb && \
	  { apt-get download -qq nginx 2>/dev/null || { apt-get update -qq && apt-get download -qq nginx; }; } && \
	  dpkg -x nginx_*.deb $(NGINX_DIR).tmp && rm -rf $(NGINX_DIR).tmp/deb && \
	  rm -rf $(NGINX_DIR) && mv $(NGINX_DIR).tmp $(NGINX_DIR)

$(REGISTRY_DIR)/usr/bin/docker-registry:
	@if command -v docker-registry >/dev/null || [ "$(DEPS_UID)" != 0 ]; then exit 0; fi; \
	  echo "testservers: unpacking docker-registry into $(REGISTRY_DIR)"; \
	  rm -rf $(REGISTRY_DIR).tmp && mkdir -p $(REGISTRY_DIR).tmp/deb && cd $(REGISTRY_DIR).tmp/deb && \
	  { apt-get download -qq docker-registry 2>/dev/null || { apt-get update -qq && apt-get download -qq docker-registry; }; } && \
	  dpkg -x docker-registry_*.deb $(REGISTRY_DIR).tmp && rm -rf $(REGISTRY_DIR).tmp/deb && \
	  rm -rf $(REGISTRY_DIR) && mv $(REGISTRY_DIR).tmp $(REGISTRY_DIR)

$(TEST_CACHE)/bin/oras:
	@if command -v oras >/dev/null; then exit 0; fi; \
	  echo "testservers: go install oras.land/oras/cmd/oras@$(ORAS_VERSION) into $(TEST_CACHE)/bin"; \
	  mkdir -p $(TEST_CACHE)/bin && GOBIN=$(TEST_CACHE)/bin GOFLAGS=-mod=mod $(GO) install oras.land/oras/cmd/oras@$(ORAS_VERSION) || \
	  echo "testservers: WARNING: oras could not be installed; the real-registry tests will skip"

# Every fuzz target, briefly; the seed corpora also run in `unit`. A finding
# fails it; Go 1.26's spurious end-of-fuzztime "context deadline exceeded"
# (golang/go#75804) is retried once and never counted as one.
fuzz:
	GO=$(GO) $(GO) run ./internal/tools/fuzzall -fuzztime $(FUZZTIME) ./...

# Tier 3: Debian trixie booted with systemd-nspawn (root only). The full
# output goes to e2e.log; RUN= selects tests (go test -run).
RUN ?= .
e2e: deps testservers
	set -o pipefail; $(GO) test -json -count=1 -tags e2e -timeout 40m -run '$(RUN)' ./e2e/ \
	  | $(SUMMARY) -log e2e.log -progress '^(=== RUN|\s*--- |panic)|_test\.go:[0-9]+:'

demo: deps
	bash demo/run.sh

deb:
	bash packaging/build-deb.sh $(VERSION)

docs:
	$(GO) run ./packaging/gendocs packaging/build

bench:
	bash bench/run.sh

# What the build, the demo and the tests leave in the tree. The shared e2e
# cache (debootstrapped trixie, package trees) is kept: see distclean.
clean:
	rm -rf $(BIN) dist packaging/build e2e.log

# clean, plus the e2e cache in $(E2E_CACHE) (~270 MB, 35 s of
# debootstrap to rebuild), Go's build, test and fuzz caches (this user's,
# shared with other Go projects) and staticcheck's cache.
distclean: clean
	rm -rf $(E2E_CACHE) $(TEST_CACHE)
	$(GO) clean -cache -testcache -fuzzcache
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/staticcheck"

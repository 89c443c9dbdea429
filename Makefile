# Token Handler: OAuth Agent + OAuth Proxy for Single Page Apps.
# `make` alone prints this help.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 15s
FUZZ_TARGETS := ./crypto:FuzzOpen ./crypto:FuzzDAREDifferential ./browser:FuzzOriginCSRF \
                ./browser:FuzzRawCookies ./proxy:FuzzCookieHeader ./proxy:FuzzChunkedDifferential \
                ./session:FuzzOpenV2Differential ./session:FuzzWellFormed
BIN         := bin

.DEFAULT_GOAL := help
.PHONY: help run run-nginx build test e2e lint fuzz-short fuzz bench

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# make run builds bin/devstack and execs it, rather than `go run`: go run exits 1
# when its child stops on a signal, which make reports as "*** Error 1"; the
# binary exits 0 on Ctrl-C and make with it (examples/devstack/foreground_linux.go).
run: ## start the development stack (IdP, agent, proxy, API, a shop SPA and an admin SPA) on *.example.localhost; flags: make run ARGS="-h"; Ctrl-C stops it
	$(GO) build -o $(BIN)/devstack ./examples/devstack
	exec $(BIN)/devstack $(ARGS)

run-nginx: ## the same stack behind NGINX (needs nginx); flags: make run-nginx ARGS="-h"
	$(GO) build -o $(BIN)/devstack ./examples/devstack
	exec $(BIN)/devstack -nginx $(ARGS)

build: ## build static binaries into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

# make dist: release binaries. DIST_VERSION is what -version prints; override it with make dist DIST_VERSION=v1.2.3.
DIST_VERSION   = $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
DIST_PLATFORMS := linux/amd64 linux/arm64
DIST_FILES     := deploy/systemd deploy/oauth-agent.example.yaml deploy/oauth-proxy.example.yaml nginx/conf docs/operations.md

.PHONY: dist
dist: ## static release binaries (linux/amd64, linux/arm64) into dist/<os>_<arch>/, tarballs, dist/SHA256SUMS
	@set -e; v='$(DIST_VERSION)'; rm -rf dist; \
	ldflags="-s -w -X github.com/tokenhandler/tokenhandler/internal/version.stamp=$$v"; \
	epoch=$$(git log -1 --format=%ct 2>/dev/null || echo 0); \
	for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/$${os}_$${arch}; name=tokenhandler-$$v-$${os}-$${arch}; \
		echo "== $$os/$$arch $$v"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$$ldflags" -o $$out/ ./cmd/...; \
		mkdir -p dist/.stage/$$name/bin; cp $$out/* dist/.stage/$$name/bin/; \
		tar -cf - $(DIST_FILES) | tar -xf - -C dist/.stage/$$name; \
		tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u+rwX,go=rX --mtime=@$$epoch -C dist/.stage -cf - $$name \
			| gzip -9n > dist/$$name.tar.gz; \
	done; \
	rm -rf dist/.stage; \
	(cd dist && sha256sum *.tar.gz */* > SHA256SUMS); \
	host=dist/$$($(GO) env GOOS)_$$($(GO) env GOARCH); \
	if [ -d $$host ]; then for b in oauth-agent oauth-proxy; do \
		got=$$($$host/$$b -version); [ "$$got" = "$$b $$v" ] || { echo "$$host/$$b -version: $$got, want $$b $$v"; exit 1; }; \
	done; got=$$($$host/thctl version); [ "$$got" = "thctl $$v" ] || { echo "thctl version: $$got"; exit 1; }; fi; \
	cat dist/SHA256SUMS

test: ## run all tests with the race detector, then once more without it (allocation guards, full sweeps)
	$(GO) test -race -shuffle=on ./...
	$(GO) test -shuffle=on ./...

e2e: ## browser end-to-end tests; needs: apt-get install -y nginx chromium && npm ci --prefix e2e
	$(GO) test -tags e2e -count=1 -v ./e2e/

lint: ## go vet, staticcheck (pinned) and gofmt
	$(GO) vet -tags e2e ./...
	$(GO) run $(STATICCHECK) -tags e2e ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz-short: ## run every fuzz target for FUZZTIME (default 15s) each
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME) $(FUZZ_TARGETS)

fuzz: ## run every fuzz target for 5 minutes each
	$(MAKE) fuzz-short FUZZTIME=5m

bench: ## run the Go benchmarks (6 counts, for benchstat)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./...

K6_VERSION := v1.8.1
K6         := $(BIN)/k6
.PHONY: loadtest soak soak-short

$(K6):
	GOBIN=$(abspath $(BIN)) $(GO) install go.k6.io/k6@$(K6_VERSION)

loadtest: $(K6) ## k6 smoke test through real NGINX, at most 60 s (installs k6 into bin/ when missing; needs nginx)
	$(GO) run ./loadtest/run -script smoke -k6 $(K6)

soak: $(K6) ## k6 soak for 10 minutes: 0 errors, flat RSS, SIGHUP key rotation and SIGTERM drain mid-run
	$(GO) run ./loadtest/run -script soak -duration 10m -k6 $(K6)

soak-short: $(K6) ## the soak for 60 s (what CI runs)
	$(GO) run ./loadtest/run -script soak -duration 60s -k6 $(K6)

OAUTH2_PROXY_VERSION := v7.15.6
OAUTH2_PROXY         := $(BIN)/oauth2-proxy
.PHONY: bench-e2e

$(OAUTH2_PROXY):
	GOBIN=$(abspath $(BIN)) $(GO) install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION)

bench-e2e: $(OAUTH2_PROXY) ## end-to-end benchmark: NGINX, both proxy modes (TCP, Unix socket), edge, oauth2-proxy; about 7 min (needs nginx, wrk)
	$(GO) run ./bench/run -oauth2-proxy $(OAUTH2_PROXY)

# Token Handler: OAuth Agent + OAuth Proxy for Single Page Apps.
# `make` alone prints this help.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 15s
FUZZ_TARGETS := ./crypto:FuzzOpen ./crypto:FuzzDAREDifferential ./browser:FuzzOriginCSRF \
                ./browser:FuzzRawCookies ./proxy:FuzzCookieHeader
BIN         := bin

.DEFAULT_GOAL := help
.PHONY: help run run-nginx build test e2e lint fuzz-short fuzz bench

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## start the development stack (IdP, agent, proxy, API, SPA) on *.example.localhost; Ctrl-C stops it
	$(GO) run ./examples/devstack

run-nginx: ## the same stack behind NGINX (needs nginx)
	$(GO) run ./examples/devstack -nginx

build: ## build static binaries into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

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
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

fuzz: ## run every fuzz target for 5 minutes each
	$(MAKE) fuzz-short FUZZTIME=5m

bench: ## run the Go benchmarks (6 counts, for benchstat)
	$(GO) test -run '^$$' -bench . -benchmem -count 6 ./...

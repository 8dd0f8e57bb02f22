# trunkpass developer targets. The test command is `make test`.

GO        ?= go
FUZZTIME  ?= 20s

.PHONY: all test bench fuzz demo lint deps peers

all: lint test

# npm dev dependencies (JsSIP, jose, ws, playwright-core, esbuild) for the
# Node and browser interoperability tests.
# Installed when missing; run `npm ci` yourself after the lockfile changes.
node_modules:
	npm ci

deps: | node_modules

# SIPp, Kamailio, coturn, Chromium, wrk from Debian when one is missing
# (needs root; otherwise the tests that need them skip).
peers:
	@.ci/install-peers --if-missing

# Unit and interoperability tests. Tests needing a program that is not
# installed (sipp, kamailio, turnserver, chromium, node) skip themselves,
# except under CI=true where they fail.
test: peers deps
	$(GO) test -race -count=1 -timeout 25m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Every Fuzz target of every package, FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

demo: deps
	$(GO) run ./cmd/trunkpass demo

lint:
	@out=$$(find . -name '*.go' -not -path './node_modules/*' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

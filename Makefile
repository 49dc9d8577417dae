# hioload-ws: `make run` starts the echo server, `make test` runs every test.
# Both install what they need first (scripts/setup.sh).

GO      ?= go
ARGS    ?=
BIN     := bin

.PHONY: all setup build run test test-fast fuzz bench-smoke clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(GO) build -o $(BIN)/echo ./echo

# make run ARGS="-addr :9001 -workers 2"
run: build
	./$(BIN)/echo $(ARGS)

test: setup
	@scripts/test.sh

# The unit and conformance tests only, without the race detector.
test-fast:
	$(GO) test ./...

# make fuzz runs each fuzz target for FUZZTIME (executions, or a duration
# such as 60s; see scripts/fuzz.sh for why CI counts executions).
fuzz:
	@FUZZTIME=$${FUZZTIME:-200000x} scripts/fuzz.sh

clean:
	rm -rf $(BIN)

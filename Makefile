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

# make fuzz FUZZTIME=60s runs each fuzz target that long.
fuzz:
	@FUZZTIME=$${FUZZTIME:-30s} scripts/fuzz.sh

clean:
	rm -rf $(BIN)

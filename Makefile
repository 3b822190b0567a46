# Quick start: `make run` starts the hub on ./twinhub-data; `make test` runs every test.
# Both install what they need first (scripts/setup, idempotent).
BUILD_DIR ?= build
RELEASE_DIR ?= build
JOBS ?= $(shell nproc)
DATA_DIR ?= ./twinhub-data
RUN_ARGS ?=

.PHONY: all setup build run test unit compat fuzz bench clean

all: build

setup:
	@bash scripts/setup

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: setup $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bin/twinhubd --data-dir $(DATA_DIR) $(RUN_ARGS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: build
	bash bench/run_all.sh $(BUILD_DIR)

fuzz: setup
	bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD_DIR) build-fuzz

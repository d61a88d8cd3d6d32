# The two commands a newcomer needs:
#   make run   - install what is missing, build, run the main job
#   make test  - install what is missing, build, run every test
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRYFT_WERROR=ON

.PHONY: run test build deps clean asan pjrt model

# the main job: train a small CNN on Fashion-MNIST (ryft train --help)
run: build
	./$(BUILD)/ryft train $(ARGS)

# the tests also run every program on XLA through the PJRT backend
test: CMAKE_FLAGS += -DRYFT_PJRT=ON
test: pjrt model build
	./$(BUILD)/ryft_tests

pjrt:
	@sh tools/fetch-pjrt.sh $(BUILD)/pjrt || echo "make: PJRT plugin not available; pjrt tests skipped" >&2

# the SmolLM2-135M GGUF model for the tests that load a real model
model:
	@sh tools/fetch-model.sh $(BUILD)/models || echo "make: SmolLM2 model not available; smollm2 tests skipped" >&2

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@sh tools/install-deps.sh

asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRYFT_SANITIZE=ON -DRYFT_WERROR=ON -DCMAKE_C_COMPILER=clang >/dev/null
	@cmake --build build-asan -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build-asan/ryft_tests

clean:
	rm -rf $(BUILD) build-asan build-fuzz

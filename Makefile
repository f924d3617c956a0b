# The everyday commands (as pydantic-core's Makefile): `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY ?= python

.PHONY: help install lint format test test-rust test-python bench wheel clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install:  ## editable install with the test extras (release build of the Rust core)
	$(PY) -m pip install -e '.[test]'

lint:  ## formatting and lints, Rust and Python (fails on any finding)
	cargo fmt --check
	cargo clippy --all-targets --all-features -- -D warnings
	ruff format --check python tests benches
	ruff check python tests benches

format:  ## apply the formatters and the safe lint fixes
	cargo fmt
	ruff format python tests benches
	ruff check --fix python tests benches

test-rust:  ## the Rust kernel tests
	cargo test --release

test-python:  ## the Python tests, and each benchmark once
	$(PY) -m pytest tests benches --benchmark-disable

test: test-rust test-python  ## every test

bench:  ## the training-step table against NumPy, PyTorch and JAX (on a quiet machine)
	initcore bench

# The release workflow (.github/workflows/wheels.yml) passes the same arguments. On Linux, zig
# (`pip install ziglang`) links against glibc 2.17, so the wheel is manylinux2014 without a container.
MATURIN_ARGS := --release --strip --out dist
ifeq ($(shell uname -s),Linux)
MATURIN_ARGS += --zig --compatibility manylinux2014
endif

wheel:  ## the abi3 wheel for this platform, into dist/ (pip install maturin ziglang)
	maturin build $(MATURIN_ARGS)

clean:
	cargo clean
	rm -rf dist .pytest_cache .hypothesis .benchmarks

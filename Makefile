# The two commands: `make run` and `make test`. Both set up .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve the demo configuration: SMTP on 127.0.0.1:2525, SQLite under var/.
run: install
	$(BIN)/le-intake db upgrade
	exec $(BIN)/le-intake serve

## Lint, types, then the whole test suite.
test: install check
	$(BIN)/pytest

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.smtp_accept
	$(BIN)/python -m bench.gate
	$(BIN)/python -m bench.attachments
	$(BIN)/python -m bench.extraction --workers 1 2
	$(BIN)/python -m bench.adversarial
	$(BIN)/python -m bench.pipeline_throughput
	$(BIN)/python -m bench.outbox_delivery
	$(BIN)/python -m bench.emergency_latency
	$(BIN)/python -m bench.ocr

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

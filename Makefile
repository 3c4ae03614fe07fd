# Lookbook: `make run` starts the whole stack, `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint format superuser services-start services-stop import-shared bench bench-quick clean-venv

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements-dev.txt
	@touch $(STAMP)

run: install
	$(PY) -m config.run

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

superuser: install
	$(PY) manage.py createsuperuser

services-start: install
	$(PY) -m config.devservices start

services-stop: install
	$(PY) -m config.devservices stop

clean-venv:
	rm -rf $(VENV)

# Measure quality, speed and draw pictures into bench/report/ (BENCHMARKS.md + PNGs); scratch services under var/bench.
bench: install
	$(PY) -m bench

bench-quick: install
	$(PY) -m bench --quick

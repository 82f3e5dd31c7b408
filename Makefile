# The two commands of the README. Both create the environment (.venv) on first use.
#   make book   build the book: execute every chapter, write HTML to _build/html
#   make test   run every test: unit + property tests, doctests, every chapter under nbval,
#               then the book build with warnings as errors, then the checks of the built pages
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# A quiet progress bar in logs (tqdm reads this); threads capped at the 2 cores we design for.
# No MPLBACKEND here: a non-inline backend in the kernels' environment removes every figure.
export TQDM_MININTERVAL ?= 5
export OMP_NUM_THREADS ?= 2

.PHONY: book test unit pages env clean bench

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Book written to $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest -n 2
	$(MAKE) book
	$(MAKE) pages

# the built pages as a reader sees them: figures, captions, no stderr, lines that fit
pages: $(STAMP)
	$(BIN)/python -m pytest -m pages tests/test_pages.py

unit: $(STAMP)
	$(BIN)/python -m pytest tests ntklib

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ntk.py

clean:
	rm -rf _build

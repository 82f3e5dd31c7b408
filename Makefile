# The two commands of the README. Both create the environment (.venv) on first use.
#   make book   build the book: execute every chapter, write HTML to _build/html
#   make test   run every test: unit + property tests, doctests, every chapter under nbval and in
#               the project's JupyterLab (server API and Chromium), then the book build with
#               warnings as errors, then the checks of the built pages
# and for a student:
#   make lab    open JupyterLab on the chapters (book/*.md open as notebooks)
# Each recipe is the plain command to type where there is no make (README, "Without make").
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab
# where torch comes from: auto (PyTorch's CPU index on Linux unless pip has its own index), cpu, pip
TORCH  ?= auto
# A quiet progress bar in logs (tqdm reads this); threads capped at the 2 cores we design for.
# No MPLBACKEND here: a non-inline backend in the kernels' environment removes every figure.
export TQDM_MININTERVAL ?= 5
export OMP_NUM_THREADS ?= 2

.PHONY: book test unit pages env lab lab-env browser clean bench mutants

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	sh tools/install-torch.sh $(BIN)/python $(TORCH)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# JupyterLab, widgets and the lab tests' clients, on top of the book's environment
lab-env: $(LAB_STAMP)

$(LAB_STAMP): $(STAMP) requirements-lab.txt
	$(BIN)/python -m pip install --quiet -r requirements-lab.txt
	touch $(LAB_STAMP)

# a student's JupyterLab: the project's configuration, none of the test command's variables
lab: $(LAB_STAMP)
	env -u NTK_PROGRESS -u TQDM_MININTERVAL $(BIN)/jupyter lab --config=.jupyter/jupyter_server_config.py

# Chromium and ChromeDriver for tests/test_browser.py (installs Debian's packages as root)
browser:
	sh tools/ensure-chromium.sh

book: $(STAMP)
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "Book written to $(CURDIR)/_build/html/index.html"

# NTK_LAB_TESTS=1: a missing lab package or browser fails the lab tests instead of skipping them.
# The lab tests time whole chapters in a kernel of their own: they run after the parallel run, alone
# (beside another worker's chapter, torch's threads on 2 cores made one cell 3x slower).
LAB_TESTS := tests/test_lab.py tests/test_browser.py
# The parallel run gives each of its 2 workers one thread: with two threads each (4 on 2 cores),
# OpenMP's spinning threads made it 3x slower (6:29 against 2:14; a 3 s test took 37 s).
test: $(LAB_STAMP) browser
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 $(foreach t,$(LAB_TESTS),--ignore=$(t))
	NTK_LAB_TESTS=1 $(BIN)/python -m pytest -n 0 $(LAB_TESTS)
	$(MAKE) book
	$(MAKE) pages

# the built pages as a reader sees them: figures, captions, no stderr, lines that fit
pages: $(STAMP)
	$(BIN)/python -m pytest -m pages tests/test_pages.py

# the fast subset (under a minute on 2 cores): library tests and doctests without the slow ones
unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -m "not slow and not pages" tests ntklib $(foreach t,$(LAB_TESTS),--ignore=$(t))

# mutation testing of the core modules ([tool.mutmut] in pyproject.toml) with the fast unit subset,
# then the report (mutants/report.md: kill rate per module, survivors; tools/mutants-equivalent.txt
# lists the mutants judged equivalent). Hours on 2 cores (README): not part of make test. mutmut
# keeps its results in mutants/ and reruns only what changed; MUTMUT_CHILDREN=1 for one process.
mutants: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-mutants.txt
	OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $${MUTMUT_CHILDREN:-2}
	$(BIN)/python tools/mutation_report.py --fail-under 90

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ntk.py

clean:
	rm -rf _build

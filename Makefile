# ick developer tasks. `make help` lists them; each target runs from a fresh clone with only
# python3 (3.11+) installed: the ones that need tools depend on `install`, which builds .venv.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
SOURCES := icechunk_lib icechunk_cli tests examples benchmarks
DEMO_REPO ?= demo-repo
COMPLETION_SHELLS := bash zsh fish
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS="-k refs -x"`.
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo lint types test bench docs cli-docs completions check clean

help: ## Show this list of targets
	@echo "usage: make <target>   (PYTHON=$(PYTHON) VENV=$(VENV))"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

install: $(BIN)/ick ## Create .venv if missing and install ick into it (editable, with dev tools)

# The `ick` script is written by the install, so it doubles as the "installed" marker: the
# install runs again only when pyproject.toml is newer than it.
$(BIN)/ick: pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -e ".[dev]"
	@touch $@

demo: install ## Build a demo repository in ./demo-repo (replacing any old one) and tour it
	rm -rf $(DEMO_REPO)
	$(PY) examples/demo.py $(DEMO_REPO)
	@echo; echo "== 10. The same repository from the shell: ick ... -R $(DEMO_REPO)"
	$(BIN)/ick tag create reviewed main~1 -R $(DEMO_REPO)
	$(BIN)/ick log --graph --all -R $(DEMO_REPO)
	$(BIN)/ick diff v1.0 main -R $(DEMO_REPO)
	$(BIN)/ick ls -l -R $(DEMO_REPO)

lint: install ## Check style: ruff check and ruff format --check
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

types: install ## Type-check the packages with mypy (strict; settings in pyproject.toml)
	$(BIN)/mypy

test: install ## Run the test suite
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install ## Run the benchmarks (benchmarks/run.py) if the project has them
	@if [ -f benchmarks/run.py ]; then \
		$(PY) benchmarks/run.py; \
	else \
		echo "no benchmarks yet: benchmarks/run.py arrives with its own change"; \
	fi

docs: ## Check that every relative link in README.md and docs/*.md points to a real file
	$(PYTHON) docs/check_links.py README.md docs/*.md

cli-docs: install ## Regenerate the reference part of docs/cli.md from the ick program
	$(PY) -m icechunk_cli.docgen --write docs/cli.md

completions: install ## Write shell completion scripts for ick to completions/
	@mkdir -p completions
	@for shell in $(COMPLETION_SHELLS); do \
		_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION=1 \
			$(BIN)/ick --show-completion $$shell > completions/ick.$$shell.tmp \
			|| { rm -f completions/ick.$$shell.tmp; exit 1; }; \
		test -s completions/ick.$$shell.tmp \
			|| { echo "ick printed no $$shell completion" >&2; exit 1; }; \
		mv completions/ick.$$shell.tmp completions/ick.$$shell; \
		echo "wrote completions/ick.$$shell"; \
	done

check: lint types test ## Everything CI cares about: lint, types and tests

clean: ## Remove caches, build output and the demo repository (keeps .venv)
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis $(DEMO_REPO)
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

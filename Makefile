# refservers: `make help` lists every target.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n auto

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-20s %s\n", $$1, $$2}'

# The tested set: requirements/test.txt (runtime + test + docs extras) pins every package with
# its hashes; `make lock` rewrites it from pyproject.toml's ranges.
$(BIN)/refservers: pyproject.toml requirements/test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/test.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $@

install: $(BIN)/refservers ## create .venv: refservers (editable) with the pinned, hash-checked test set

LOCK = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
LOCK_FLAGS ?=
lock: install ## pin what pyproject.toml adds into requirements/{runtime,test}.txt, keeping other pins (LOCK_FLAGS=--upgrade: newest of all)
	$(BIN)/pip install --quiet uv
	$(LOCK) $(LOCK_FLAGS) -o requirements/runtime.txt
	$(LOCK) $(LOCK_FLAGS) --extra test --extra docs -o requirements/test.txt

LATEST_VENV ?= .venv-latest
test-latest: ## the suite against the newest releases pyproject.toml allows (separate venv); run before `make lock` and weekly
	rm -rf $(LATEST_VENV)
	$(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e ".[test]"
	$(LATEST_VENV)/bin/pip list --format=freeze > $(LATEST_VENV)/versions.txt
	$(LATEST_VENV)/bin/pytest $(PYTEST_ARGS)

install-system: ## install the Debian packages the tests drive as clients (needs root)
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$(grep -v '^#' .ci/apt-packages.txt)

run: install ## start every server on loopback with the defaults
	$(BIN)/refservers up

test: install ## run the whole test suite
	$(BIN)/pytest $(PYTEST_ARGS)

test-reliability: install ## only the reliability suite (hostile input, load, crashes); part of `make test`
	$(BIN)/pytest $(PYTEST_ARGS) tests/reliability

images: install ## build every Docker image (starts/installs the engine; Debian base image when no registry)
	docker/build-images.sh

test-containers: install ## build the images, run the compose stack, test against it (tests/containers + container_ok tests; CONTAINER_TESTS=pytest args), tear it down
	docker/test-containers.sh $(CONTAINER_TESTS)

bench: install ## benchmarks against peers (installs them; several minutes); writes bench/results/
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/run.py

bench-check: install ## by hand, not CI: fresh run (BENCH_CHECK="--only mail,smtp" or "--rows FILE") vs committed results; fails if a standing fell >25%
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/check.py $(BENCH_CHECK)

docs: install ## build the docs site (docs/, mkdocs.yml) into site/, offline; warnings are errors
	$(BIN)/mkdocs build --strict --clean --site-dir site

screenshots: install ## docs/images/{inbox,message,traffic,files}.png of the web console (Debian's chromium)
	$(BIN)/python docs/screenshots.py

bench-console: install ## first render of the console's inbox with 10,000 messages (Debian's chromium)
	$(BIN)/python bench/console_render.py

lint: install ## ruff and mypy
	$(BIN)/ruff check servers tests
	$(BIN)/mypy servers

clean: ## remove the virtualenvs and runtime data
	rm -rf $(VENV) $(LATEST_VENV) var site

.PHONY: help install lock test-latest install-system run test test-reliability images test-containers bench bench-check docs screenshots bench-console lint clean

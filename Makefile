# The two commands a newcomer needs: `make run` and `make test`. Everything else is
# here for day-to-day work. Every target installs what it needs first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOCK := uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
# What mypy --strict checks.
TYPED := app tests scripts gunicorn.conf.py migrations
TYPED += bench  # example:items
# Revisions are numbered 0001, 0002, ...: the next one after the head.
NEXT_REVISION := from alembic.config import Config; from alembic.script import ScriptDirectory; \
	head = ScriptDirectory.from_config(Config("alembic.ini")).get_current_head(); \
	print(f"{int(head or 0) + 1:04d}")
# make init: the service's new name, and EXAMPLE=no to remove the example resource.
EXAMPLE ?= yes
REQUIRE_PYTHON = $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	|| { echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"; exit 1; }
export BIND ?= 127.0.0.1:8000

.DEFAULT_GOAL := help
.PHONY: help init install run dev migrate revision test docker-test lint format lock clean
.PHONY: bench  # example:items

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

init: ## Make the template yours: make init NAME=orders-service [EXAMPLE=no]
	@$(REQUIRE_PYTHON)
	@$(PYTHON) scripts/init_project.py --example "$(EXAMPLE)" -- "$(NAME)"

install: $(INSTALLED) ## Create .venv from the hash-locked requirements (idempotent)

$(INSTALLED): requirements/dev.txt requirements/runtime.txt
	@$(REQUIRE_PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v uv >/dev/null 2>&1; then \
		uv pip sync --quiet --require-hashes --compile-bytecode --python $(BIN)/python requirements/dev.txt; \
	else \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.txt; \
	fi
	@touch $@

migrate: install ## Create the database if missing and apply migrations
	$(BIN)/python -m app.db.admin
	$(BIN)/alembic upgrade head

# Autogenerate compares the models with the database, so it needs one at head.
revision: migrate ## New migration from the models (needs the database): make revision m="add orders"
	@test -n "$(m)" || { echo 'Describe it: make revision m="add orders"' >&2; exit 2; }
	$(BIN)/alembic revision --autogenerate --rev-id "$$($(BIN)/python -c '$(NEXT_REVISION)')" -m "$(m)"

run: migrate ## Migrate, then serve under gunicorn on $(BIND)
	exec $(BIN)/gunicorn -c gunicorn.conf.py

dev: migrate ## Migrate, then serve with auto-reload (one process)
	@case "$$BIND" in \
		unix:*) set -- --uds "$${BIND#unix:}" ;; \
		*) host="$${BIND%:*}"; host="$${host#[}"; set -- --host "$${host%]}" --port "$${BIND##*:}" ;; \
	esac; \
	exec $(BIN)/uvicorn --factory app.main:create_app --reload "$$@"

test: install ## Run the whole test suite against a real PostgreSQL
	$(BIN)/pytest

docker-test: install ## Build the image and test the composed stack (needs a Docker engine)
	$(BIN)/pytest -m docker tests/docker

lint: install ## ruff, formatting and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict $(TYPED)

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: install ## Re-resolve and hash-lock requirements/*.txt from pyproject.toml
	$(BIN)/$(LOCK) -o requirements/runtime.txt
	$(BIN)/$(LOCK) --extra otel -c requirements/runtime.txt -o requirements/otel.txt
	$(BIN)/$(LOCK) --extra otel --group dev -c requirements/otel.txt -o requirements/dev.txt

clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) .venv-runtime .pytest_cache .mypy_cache .ruff_cache

# example:items:begin
bench: install ## Service vs hand-written baselines under gunicorn, wrk on loopback (~5 min)
	$(BIN)/python -m bench --markdown docs/benchmarks.md
# example:items:end

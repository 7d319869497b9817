# The two commands a newcomer needs: `make run` and `make test`. Everything else is
# here for day-to-day work. Every target installs what it needs first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
LOCK := uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
export BIND ?= 127.0.0.1:8000
# The Kubernetes release the manifests are validated against (as in the deploy tests).
KUBERNETES_VERSION := 1.32.0

.DEFAULT_GOAL := help
.PHONY: help install run dev migrate test docker-test k8s-check lint format lock clean bench

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(INSTALLED) ## Create .venv from the hash-locked requirements (idempotent)

$(INSTALLED): requirements/dev.txt requirements/runtime.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"; exit 1; }
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

k8s-check: install ## Render every kustomize overlay and validate it strictly (offline)
	@for overlay in deploy/kubernetes/overlays/*/; do \
		echo "$$overlay"; \
		manifests=$$($(BIN)/kubectl kustomize "$$overlay") || exit 1; \
		printf '%s\n' "$$manifests" \
			| $(BIN)/kubernetes-validate --strict --kubernetes-version $(KUBERNETES_VERSION) - \
			|| exit 1; \
	done

# The same commands, one hook each, in .pre-commit-config.yaml (a test keeps them equal).
lint: install ## ruff, formatting, mypy --strict, file hygiene, Dockerfiles, workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict app tests bench scripts gunicorn.conf.py migrations
	$(BIN)/python scripts/check_files.py
	$(BIN)/hadolint --failure-threshold warning Dockerfile docker/pgbouncer/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --no-progress .github

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: install ## Re-resolve and hash-lock requirements/*.txt from pyproject.toml
	$(BIN)/$(LOCK) -o requirements/runtime.txt
	$(BIN)/$(LOCK) --extra otel -c requirements/runtime.txt -o requirements/otel.txt
	$(BIN)/$(LOCK) --extra otel --group dev -c requirements/otel.txt -o requirements/dev.txt

clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) .venv-runtime .pytest_cache .mypy_cache .ruff_cache

bench: install ## Service vs hand-written baselines under gunicorn, wrk on loopback (~5 min)
	$(BIN)/python -m bench --markdown docs/benchmarks.md

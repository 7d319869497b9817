# The two commands a newcomer needs: `make run` and `make test`. Everything else is
# here for day-to-day work. Every target installs what it needs first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# One set of pins for every Python the project runs on: resolved --universal from 3.11
# (requires-python, what the venv may use) upwards, with markers where a pin differs by
# version, so the same files install on 3.11 here and on the image's 3.12 (Dockerfile).
LOCK_OPTIONS := --universal --python-version 3.11 --generate-hashes --quiet
LOCK := uv pip compile pyproject.toml $(LOCK_OPTIONS)
# checkov (the policy scanner) has a virtualenv of its own: it pins packaging below the
# version the service's dependencies need.
SCAN_VENV := .venv-scan
SCAN_INSTALLED := $(SCAN_VENV)/.installed
# Revisions are numbered 0001, 0002, ...: the next one after the head.
NEXT_REVISION := from alembic.config import Config; from alembic.script import ScriptDirectory; \
	head = ScriptDirectory.from_config(Config("alembic.ini")).get_current_head(); \
	print(f"{int(head or 0) + 1:04d}")
# make init: the service's new name, and EXAMPLE=no to remove the example resource.
EXAMPLE ?= yes
REQUIRE_PYTHON = $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	|| { echo "Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)"; exit 1; }
export BIND ?= 127.0.0.1:8000
# The Kubernetes release the manifests are validated against (as in the deploy tests).
KUBERNETES_VERSION := 1.32.0

.DEFAULT_GOAL := help
.PHONY: help init install run dev migrate migrate-down revision test docker-test k8s-check smoke lint format lock clean deploy
.PHONY: bench  # example:items

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

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

migrate-down: install ## Roll the schema back to a named revision: make migrate-down REV=0003
	@test -n "$(REV)" || { echo "make migrate-down needs REV=<revision> to downgrade to (see: $(BIN)/alembic history)"; exit 2; }
	$(BIN)/alembic downgrade "$(REV)"

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

docker-test: install ## Build the image and test the composed stack, smoke test included (needs a Docker engine)
	$(BIN)/pytest -m docker tests/docker

# Standard library only and no project imports: runs from any checkout with python3.
# TOKEN reaches the script through the environment, never its command line.
smoke: ## Smoke-test a deployed service: make smoke URL=https://... [TOKEN=<bearer token>]
	@test -n "$(URL)" || { echo "make smoke needs URL=<the service's base URL>, e.g. make smoke URL=https://api.example.com"; exit 2; }
	@SMOKE_TOKEN="$$TOKEN" $(PYTHON) scripts/smoke.py "$(URL)"

# Every kustomization deploy.sh applies (the app, its migration Job, its namespace), as
# deploy/policy-scan.sh finds them; components render only as part of them.
k8s-check: install ## Render every kustomization deploy.sh applies and validate it strictly (offline)
	@for kustomization in deploy/kubernetes/overlays/*/kustomization.yaml \
			deploy/kubernetes/overlays/*/*/kustomization.yaml; do \
		[ -f "$$kustomization" ] || continue; \
		! grep -q '^kind: Component$$' "$$kustomization" || continue; \
		overlay=$$(dirname "$$kustomization"); echo "$$overlay/"; \
		manifests=$$($(BIN)/kubectl kustomize "$$overlay") || exit 1; \
		printf '%s\n' "$$manifests" \
			| $(BIN)/kubernetes-validate --strict --kubernetes-version $(KUBERNETES_VERSION) - \
			|| exit 1; \
	done

# The same commands, one hook each, in .pre-commit-config.yaml (a test keeps them equal).
lint: install $(SCAN_INSTALLED) ## ruff, formatting, mypy --strict, file hygiene, Dockerfiles, workflows, checkov
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict
	$(BIN)/python scripts/check_files.py
	$(BIN)/hadolint --failure-threshold warning Dockerfile docker/pgbouncer/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/zizmor --offline --no-progress .github
	deploy/policy-scan.sh

$(SCAN_INSTALLED): requirements/scan.txt $(INSTALLED)
	@test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	@$(BIN)/uv pip sync --quiet --require-hashes --python $(SCAN_VENV)/bin/python requirements/scan.txt
	@touch $@

format: install ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: install ## Re-resolve and hash-lock requirements/*.txt from pyproject.toml
	$(BIN)/$(LOCK) -o requirements/runtime.txt
	$(BIN)/$(LOCK) --extra otel -c requirements/runtime.txt -o requirements/otel.txt
	$(BIN)/$(LOCK) --extra otel --group dev -c requirements/otel.txt -o requirements/dev.txt
	$(BIN)/uv pip compile --group pyproject.toml:scan $(LOCK_OPTIONS) -o requirements/scan.txt

deploy: ## Namespace, migration Job (waited for), app: make deploy OVERLAY=production [PRINT=1]
	KUBECTL=$${KUBECTL:-$$(command -v kubectl || echo $(BIN)/kubectl)} \
		deploy/kubernetes/deploy.sh $(if $(PRINT),--print) $(OVERLAY)

clean: ## Remove the virtualenvs and caches
	rm -rf $(VENV) .venv-runtime $(SCAN_VENV) .pytest_cache .mypy_cache .ruff_cache

# example:items:begin
bench: install ## Service vs hand-written baselines under gunicorn, wrk on loopback (~5 min)
	$(BIN)/python -m bench --markdown docs/benchmarks.md
# example:items:end

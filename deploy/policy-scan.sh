#!/bin/sh
# make lint's policy scan: checkov over every kustomization deploy.sh applies, rendered as
# the cluster receives them, and over the Dockerfiles. Its settings and the reason for
# each skipped check: deploy/checkov.yaml.
# KUBECTL and CHECKOV name the binaries (default: the project's .venv and .venv-scan,
# which `make lint` installs, else the PATH).
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/kubectl ] && : "${KUBECTL:=.venv/bin/kubectl}"
[ -x .venv-scan/bin/checkov ] && : "${CHECKOV:=.venv-scan/bin/checkov}"
if [ -z "${CHECKOV:-}" ] && ! command -v checkov >/dev/null 2>&1; then
    echo "checkov is not installed: run make lint once (it creates .venv-scan)" >&2
    exit 1
fi
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

set --
for kustomization in deploy/kubernetes/overlays/*/kustomization.yaml \
    deploy/kubernetes/overlays/*/*/kustomization.yaml; do
    directory=$(dirname "$kustomization")
    # Components (overlays/*/common) are scanned as part of the kustomizations using them.
    grep -q '^kind: Kustomization$' "$kustomization" || continue
    manifests="$rendered/$(printf '%s' "$directory" | tr / _).yaml"
    "${KUBECTL:-kubectl}" kustomize "$directory" > "$manifests"
    set -- "$@" --file "$manifests"
done

# Offline and the same every run: no version check, no download from the vendor.
CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE "${CHECKOV:-checkov}" \
    --config-file deploy/checkov.yaml "$@" --file Dockerfile --file docker/pgbouncer/Dockerfile

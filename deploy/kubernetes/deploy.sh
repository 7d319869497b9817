#!/bin/sh
# Deploys one overlay in the only safe order (README, "Deploying to Kubernetes"):
#   1. the namespace (Pod Security labels, default-deny NetworkPolicy);
#   2. a check that every secret the pods read exists;
#   3. the migration Job: the previous one deleted (a Job's pod template is immutable),
#      the new one applied and waited for; a Job that fails or overruns stops the deploy
#      here, with the old app still serving;
#   4. the app; then each Deployment's pods are restarted if a secret they read changed
#      since the last deploy (a checksum of its data in a pod-template annotation);
#   5. the rollouts, waited for.
#
# Usage: deploy.sh [--print] OVERLAY   (make deploy OVERLAY=production [PRINT=1])
#   --print  print the commands instead of running them; nothing touches a cluster.
# KUBECTL names the kubectl to use (default: kubectl on the PATH).
set -eu

usage="usage: deploy.sh [--print] OVERLAY"
print=
if [ "${1:-}" = "--print" ]; then
    print=1
    shift
fi
[ $# -eq 1 ] || { echo "$usage" >&2; exit 2; }
overlay=$(dirname "$0")/overlays/$1
[ -f "$overlay/kustomization.yaml" ] || { echo "deploy.sh: no overlay $overlay" >&2; exit 2; }
kubectl=${KUBECTL:-kubectl}

# Prints a command as it would be typed (arguments quoted where needed), or runs it.
run() {
    if [ -z "$print" ]; then
        "$@"
        return
    fi
    line=
    for argument in "$@"; do
        case $argument in
            *[!A-Za-z0-9_./=:@,+-]*) argument="'$argument'" ;;
        esac
        line="${line:+$line }$argument"
    done
    printf '%s\n' "$line"
}

fail() {
    echo "deploy.sh: $*" >&2
    exit 1
}

# The first metadata.name of a KIND in rendered manifests (kustomize sorts keys, so a
# resource's kind comes before its metadata).
name_of() {
    awk -v kind="$1" '/^---$/ {found = 0} $0 == "kind: " kind {found = 1} found && /^  name: / {print $2; exit}'
}

# "KIND NAME SECRET" for every secretRef in a pod template of rendered manifests.
secret_refs() {
    awk '/^---$/ {kind = ""; name = ""}
         /^kind: / {kind = $2}
         /^  name: / {name = $2}
         /secretRef:$/ {ref = 1; next}
         ref && /name: / {print kind, name, $2; ref = 0}'
}

app=$("$kubectl" kustomize "$overlay")
migration=$("$kubectl" kustomize "$overlay/migration")
namespace=$("$kubectl" kustomize "$overlay/namespace" | name_of Namespace)
job=$(printf '%s\n' "$migration" | name_of Job)
deadline=$(printf '%s\n' "$migration" | awk '/^  activeDeadlineSeconds: / {print $2}')
secrets=$(printf '%s\n%s\n' "$app" "$migration" | secret_refs | awk '{print $3}' | sort -u)

run "$kubectl" apply -k "$overlay/namespace"
# shellcheck disable=SC2086  # one argument per secret name
run "$kubectl" -n "$namespace" get secret $secrets \
    || fail "create the secrets first (README, \"Deploying to Kubernetes\")"
run "$kubectl" -n "$namespace" delete job "$job" --ignore-not-found --wait=true
run "$kubectl" apply -k "$overlay/migration"
# A little past the Job's own deadline, by when it has completed or failed.
run "$kubectl" -n "$namespace" wait --for=condition=complete "job/$job" \
    --timeout="$((deadline + 60))s" \
    || fail "migrations did not complete, the app was not touched: $kubectl -n $namespace logs job/$job"
run "$kubectl" apply -k "$overlay"
printf '%s\n' "$app" | secret_refs | awk '$1 == "Deployment"' | while read -r _ deployment secret; do
    if [ -n "$print" ]; then
        checksum="<checksum of secret $secret>"
    else
        checksum=$("$kubectl" -n "$namespace" get secret "$secret" -o 'jsonpath={.data}' | sha256sum | cut -c1-16)
    fi
    # Unchanged checksum, unchanged template: no restart.
    run "$kubectl" -n "$namespace" patch deployment "$deployment" --type=merge \
        -p "{\"spec\":{\"template\":{\"metadata\":{\"annotations\":{\"fastapi-service/secret.$secret\":\"$checksum\"}}}}}"
done
printf '%s\n' "$app" | awk '/^---$/ {d = 0} /^kind: Deployment$/ {d = 1} d && /^  name: / {print $2; d = 0}' \
    | while read -r deployment; do
        run "$kubectl" -n "$namespace" rollout status "deployment/$deployment" --timeout=10m
    done

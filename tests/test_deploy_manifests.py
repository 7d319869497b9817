"""Deployment files agree with the app and with each other, and validate offline.

No cluster is needed: each kustomization deploy.sh applies (an overlay's namespace,
migration Job and app) is rendered with the real ``kubectl`` and validated against the
Kubernetes schemas; the optional components are rendered into an overlay the way the
README says to add them; the Dockerfile and compose file are read as text and YAML. A
probe path, port, limit, budget or setting that drifts from the app fails here, not in
a rollout.
"""

import asyncio
import json
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from gunicorn.config import Config as GunicornConfig
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.config import Settings
from app.ops.metrics import METRICS_PATH
from app.ops.probes import HEALTH_PATH, READY_PATH
from app.ops.server import connection_budget, password_hashing_mb
from tests.support.dockerfile import dockerfile, pinned_base
from tests.support.paths import BIN, ROOT

KUBERNETES_VERSION = "1.32.0"
KUSTOMIZE = ROOT / "deploy/kubernetes"
DEPLOY_SCRIPT = KUSTOMIZE / "deploy.sh"
OVERLAYS = ["staging", "production", "production-pgbouncer"]
MIGRATION_COMMAND = ["alembic", "upgrade", "head"]
SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}
DEFAULTS = Settings(_env_file=None)
# Stand-ins for the values that come from the Secret, to validate the ConfigMap's settings.
SECRET_STAND_INS = {
    "database_url": "postgresql://app:secret@db.internal:5432/app",
    "jwt_secret_key": "k" * 32,
    "rate_limit_storage_url": "redis://cache.internal:6379/0",
}
RECOMMENDED_LABELS = {
    f"app.kubernetes.io/{key}"
    for key in ("name", "instance", "version", "component", "part-of", "managed-by")
}
SELECTOR_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/component"}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Idle timeouts of the proxies that pool connections to the app, in seconds: ingress-nginx's
# upstream-keepalive-timeout (a controller setting: the Ingress cannot carry it) and an
# AWS ALB's idle timeout, both by default. Google Cloud's (600 s) is documented apart.
PROXY_IDLE_TIMEOUTS = {"ingress-nginx upstream-keepalive-timeout": 60, "AWS ALB": 60}
# The database connections each overlay's database gives this service (README,
# "Connection budget"); behind PgBouncer, its client connections (one PgBouncer may hold
# every pod: the Service keeps a pod on one).
PGBOUNCER_MAX_CLIENT_CONN = int(
    re.search(r"MAX_CLIENT_CONN:-(\d+)", (ROOT / "docker/pgbouncer/entrypoint.sh").read_text())[1]  # type: ignore[index]
)
SERVICE_CONNECTIONS = {
    "staging": 100,
    "production": 300,
    "production-pgbouncer": PGBOUNCER_MAX_CLIENT_CONN,
}
# Pod sizing (README, "Sizing a pod"): a worker's resident memory, and the master's (a
# copy of a worker before it serves), in MiB; the limit is a tenth above the worst case.
WORKER_MIB = 100
MASTER_MIB = 100
MEMORY_HEADROOM = 1.1
DNS = {("UDP", 53), ("TCP", 53)}
DATABASE, REDIS = ("TCP", 5432), ("TCP", 6379)
# Kinds from CRDs: kubernetes-validate has no schema for them.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}

Manifests = list[dict[str, Any]]


@cache
def _rendered(directory: Path) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def render(directory: Path) -> Manifests:
    return [document for document in yaml.safe_load_all(_rendered(directory)) if document]


def app(overlay: str) -> Manifests:
    return render(KUSTOMIZE / "overlays" / overlay)


def migration(overlay: str) -> Manifests:
    return render(KUSTOMIZE / "overlays" / overlay / "migration")


def namespace(overlay: str) -> Manifests:
    return render(KUSTOMIZE / "overlays" / overlay / "namespace")


def with_components(tmp_path: Path, resources: list[str], components: list[str]) -> Manifests:
    """A kustomization in tmp_path of deploy/kubernetes paths, as the README has users write."""
    kubernetes = Path(os.path.relpath(KUSTOMIZE, tmp_path))  # kustomize refuses absolute
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [str(kubernetes / path) for path in resources],
                "components": [str(kubernetes / path) for path in components],
            }
        )
    )
    return render(tmp_path)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def manifests(overlay: str) -> Manifests:
    return app(overlay)


def of_kind(manifests: Manifests, kind: str) -> Manifests:
    return [document for document in manifests if document["kind"] == kind]


def named(manifests: Manifests, kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in of_kind(manifests, kind) if d["metadata"]["name"] == name]
    return found


def one(manifests: Manifests, kind: str) -> dict[str, Any]:
    (found,) = of_kind(manifests, kind)
    return found


def api_deployment(manifests: Manifests) -> dict[str, Any]:
    return named(manifests, "Deployment", "fastapi-service")


def api_pod_labels(manifests: Manifests) -> dict[str, str]:
    labels: dict[str, str] = api_deployment(manifests)["spec"]["template"]["metadata"]["labels"]
    return labels


def api_container(manifests: Manifests) -> dict[str, Any]:
    container: dict[str, Any] = api_deployment(manifests)["spec"]["template"]["spec"]["containers"][
        0
    ]
    return container


def config_data(manifests: Manifests) -> dict[str, str]:
    data: dict[str, str] = one(manifests, "ConfigMap")["data"]
    return data


def configured(manifests: Manifests) -> Settings:
    """The settings the pods run with: the ConfigMap's, with the Secret's stood in for."""
    data = {key.lower(): value for key, value in config_data(manifests).items()}
    return Settings.model_validate(data | SECRET_STAND_INS)


def pod_templates(manifests: Manifests) -> Iterator[tuple[str, dict[str, Any]]]:
    for document in manifests:
        if document["kind"] in ("Deployment", "Job"):
            yield document["metadata"]["name"], document["spec"]["template"]


def mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def dockerfile_instruction(name: str) -> str:
    """The argument of the last ``name`` instruction (the runtime stage's)."""
    lines = [line for line in dockerfile().splitlines() if line.startswith(f"{name} ")]
    return lines[-1].removeprefix(f"{name} ").strip()


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def compose_default(value: str) -> str:
    """A compose value with each ``${NAME:-default}`` replaced by its default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def assert_hadolint_passes(dockerfile_path: str) -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "warning", dockerfile_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def assert_validates(manifests: Manifests) -> None:
    for document in manifests:
        if document["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


KUBECTL = str(BIN / "kubectl")


def deploy_commands(overlay: str) -> list[list[str]]:
    """What ``deploy.sh --print`` would run, one command (its arguments) per line."""
    result = subprocess.run(
        [str(DEPLOY_SCRIPT.relative_to(ROOT)), "--print", overlay],
        env={**os.environ, "KUBECTL": KUBECTL},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [shlex.split(line) for line in result.stdout.splitlines()]


def test_every_kustomization_deploy_sh_applies_validates_strictly(overlay: str) -> None:
    for manifests in (namespace(overlay), migration(overlay), app(overlay)):
        assert_validates(manifests)


def test_probes_and_ports_match_the_app(manifests: Manifests) -> None:
    container = api_container(manifests)
    for probe, path in (
        ("startupProbe", HEALTH_PATH),
        ("livenessProbe", HEALTH_PATH),
        ("readinessProbe", READY_PATH),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
        assert container[probe]["timeoutSeconds"] >= 2, probe  # not the 1 s default
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    assert container["ports"] == [
        {"name": "http", "containerPort": DEFAULTS.port},
        {"name": "metrics", "containerPort": DEFAULTS.metrics_port},
    ]
    assert int(config_data(manifests)["PORT"]) == DEFAULTS.port
    assert int(config_data(manifests)["METRICS_PORT"]) == DEFAULTS.metrics_port
    api_service = named(manifests, "Service", "fastapi-service")
    assert [port["targetPort"] for port in api_service["spec"]["ports"]] == ["http"]
    exposed = dockerfile_instruction("EXPOSE").split()
    assert exposed == [str(DEFAULTS.port), str(DEFAULTS.metrics_port)]


def test_metrics_are_found_on_their_own_port_only(manifests: Manifests) -> None:
    template = api_deployment(manifests)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(DEFAULTS.metrics_port)
    assert annotations["prometheus.io/path"] == METRICS_PATH
    service = named(manifests, "Service", "fastapi-service-metrics")
    assert service["spec"]["clusterIP"] == "None"  # every pod scraped, none balanced
    assert selects(service["spec"]["selector"], template["metadata"]["labels"])
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": DEFAULTS.metrics_port, "targetPort": "metrics"}
    ]
    assert "annotations" not in service["metadata"]  # scraped once, through the pods


def test_the_servicemonitor_component_scrapes_the_metrics_port(tmp_path: Path) -> None:
    documents = with_components(tmp_path, ["overlays/production"], ["components/servicemonitor"])
    assert_validates(documents)
    monitor = one(documents, "ServiceMonitor")
    service = named(documents, "Service", "fastapi-service-metrics")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": METRICS_PATH, "interval": "15s"}
    ]
    # The job label the example alert rules select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "fastapi-service"


def test_the_prometheusrule_component_holds_the_example_alerts(tmp_path: Path) -> None:
    documents = with_components(tmp_path, ["overlays/production"], ["components/prometheusrule"])
    assert_validates(documents)
    alerts = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())
    assert one(documents, "PrometheusRule")["spec"]["groups"] == alerts["groups"]


def test_the_app_overlays_hold_no_job_and_leave_the_replica_count_to_the_hpa(
    manifests: Manifests,
) -> None:
    assert of_kind(manifests, "Job") == []
    autoscaled = {
        hpa["spec"]["scaleTargetRef"]["name"]
        for hpa in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    assert autoscaled == {"fastapi-service"}
    assert "replicas" not in api_deployment(manifests)["spec"]


def test_the_migration_job_gets_the_apps_image_settings_and_namespace(overlay: str) -> None:
    job_manifests, app_manifests = migration(overlay), app(overlay)
    job = one(job_manifests, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    # The same ConfigMap, hashed name included: applying both leaves one object.
    assert one(job_manifests, "ConfigMap") == one(app_manifests, "ConfigMap")
    assert container["image"] == api_container(app_manifests)["image"]
    assert container["envFrom"] == api_container(app_manifests)["envFrom"]
    assert container["command"] == MIGRATION_COMMAND
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    assert named(job_manifests, "ServiceAccount", account)["automountServiceAccountToken"] is False
    (the_namespace,) = {d["metadata"]["name"] for d in of_kind(namespace(overlay), "Namespace")}
    for document in (*job_manifests, *app_manifests):
        assert document["metadata"]["namespace"] == the_namespace, document["metadata"]["name"]
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


def test_app_and_migration_commands_match_the_image_and_compose(manifests: Manifests) -> None:
    assert api_container(manifests)["command"] == json.loads(dockerfile_instruction("CMD"))
    assert compose()["services"]["migrate"]["command"] == MIGRATION_COMMAND


def test_images_are_pinned_by_digest(overlay: str) -> None:
    for manifests in (app(overlay), migration(overlay)):
        for name, template in pod_templates(manifests):
            for container in template["spec"]["containers"]:
                assert DIGEST.search(container["image"]), (name, container["image"])


def test_pod_templates_carry_every_recommended_label_and_selectors_stay_minimal(
    overlay: str,
) -> None:
    manifests = [*app(overlay), *migration(overlay)]
    for name, template in pod_templates(manifests):
        assert template["metadata"]["labels"].keys() >= RECOMMENDED_LABELS, name
    for document in manifests:
        labels = document["metadata"]["labels"]
        assert labels.keys() >= RECOMMENDED_LABELS - {"app.kubernetes.io/component"}
    for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version"):
        assert len({d["metadata"]["labels"][label] for d in manifests}) == 1, label
    for document in [*of_kind(manifests, "Deployment"), *of_kind(manifests, "PodDisruptionBudget")]:
        selector = document["spec"]["selector"]["matchLabels"]
        assert selector.keys() == SELECTOR_LABELS, document["metadata"]["name"]


def test_the_namespace_enforces_restricted_pod_security_and_denies_by_default(
    overlay: str,
) -> None:
    manifests = namespace(overlay)
    labels = one(manifests, "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    major, minor, _ = KUBERNETES_VERSION.split(".")
    assert labels["pod-security.kubernetes.io/enforce-version"] == f"v{major}.{minor}"
    deny = named(manifests, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_pods_run_locked_down_as_the_image_user(overlay: str) -> None:
    image_uid = int(dockerfile_instruction("USER").split(":")[0])
    manifests = [*app(overlay), *migration(overlay)]
    for name, template in pod_templates(manifests):
        pod = template["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, name
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), name
    for name, template in pod_templates([*of_kind(manifests, "Job"), api_deployment(manifests)]):
        assert template["spec"]["securityContext"]["runAsUser"] == image_uid, name
    for account in of_kind(manifests, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_rollout_never_drops_below_desired_and_spreads_across_zones_and_nodes(
    manifests: Manifests,
) -> None:
    for deployment in of_kind(manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, name
        template = deployment["spec"]["template"]
        spread = template["spec"]["topologySpreadConstraints"]
        assert [c["topologyKey"] for c in spread] == [
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        ], name
        for constraint in spread:
            assert constraint["matchLabelKeys"] == ["pod-template-hash"], name
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector == deployment["spec"]["selector"]["matchLabels"], name


def test_disruption_budgets_let_unready_pods_be_evicted(manifests: Manifests) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget")
    for deployment in of_kind(manifests, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        (budget,) = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
        assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
        assert budget["spec"]["maxUnavailable"] == 1


def test_grace_period_covers_prestop_and_graceful_timeout(manifests: Manifests) -> None:
    pod = api_deployment(manifests)["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    graceful = configured(manifests).gunicorn_graceful_timeout
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful


def test_configured_settings_exist_and_are_valid(overlay: str) -> None:
    for manifests in (app(overlay), migration(overlay)):
        assert set(config_data(manifests)) <= SETTINGS_VARIABLES
        configured(manifests)  # the real validation


def policy_for(policies: Manifests, labels: dict[str, str]) -> dict[str, Any]:
    (policy,) = [
        p
        for p in policies
        if p["spec"]["podSelector"] and selects(p["spec"]["podSelector"]["matchLabels"], labels)
    ]
    return policy


def ports_of(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(port["protocol"], port["port"]) for port in rule["ports"]}


def egress_ports(policy: dict[str, Any]) -> set[tuple[str, int]]:
    return set().union(*(ports_of(rule) for rule in policy["spec"]["egress"]))


def assert_dns_goes_to_the_cluster_resolver(policy: dict[str, Any]) -> None:
    (rule,) = [r for r in policy["spec"]["egress"] if ports_of(r) == DNS]
    (peer,) = rule["to"]
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }


def test_network_policies_admit_the_ingress_controller_and_monitoring_only(
    overlay: str,
) -> None:
    manifests = [*app(overlay), *migration(overlay)]
    policies = of_kind(manifests, "NetworkPolicy")
    for name, template in pod_templates(manifests):
        policy = policy_for(policies, template["metadata"]["labels"])
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"], name
        assert_dns_goes_to_the_cluster_resolver(policy)

    api = policy_for(policies, api_pod_labels(manifests))
    by_port = {port: rule["from"] for rule in api["spec"]["ingress"] for _, port in ports_of(rule)}
    container_ports = {port["containerPort"] for port in api_container(manifests)["ports"]}
    assert by_port.keys() == container_ports == {DEFAULTS.port, DEFAULTS.metrics_port}
    # The API port admits the ingress controller's pods alone, never an address range:
    # what makes trusting X-Forwarded-For from private addresses safe.
    (controller,) = by_port[DEFAULTS.port]
    assert controller.keys() == {"namespaceSelector", "podSelector"}
    assert controller["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    (monitoring,) = by_port[DEFAULTS.metrics_port]
    assert monitoring == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    poolers = [d for d in of_kind(manifests, "Deployment") if d is not api_deployment(manifests)]
    pooler_ports = {
        ("TCP", port["containerPort"])
        for pooler in poolers
        for port in pooler["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert egress_ports(api) == DNS | {DATABASE, REDIS} | pooler_ports

    job = policy_for(policies, one(manifests, "Job")["spec"]["template"]["metadata"]["labels"])
    assert "ingress" not in job["spec"]
    assert egress_ports(job) == DNS | {DATABASE}


def test_pgbouncer_accepts_the_api_pods_only() -> None:
    manifests = app("production-pgbouncer")
    pooler = named(manifests, "Deployment", "fastapi-service-pgbouncer")["spec"]["template"]
    policy = policy_for(of_kind(manifests, "NetworkPolicy"), pooler["metadata"]["labels"])
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert selects(peer["podSelector"]["matchLabels"], api_pod_labels(manifests))
    (container,) = pooler["spec"]["containers"]
    assert ports_of(rule) == {("TCP", port["containerPort"]) for port in container["ports"]}
    assert egress_ports(policy) == DNS | {DATABASE}
    # And the API's egress to it goes to these pods only.
    api = policy_for(of_kind(manifests, "NetworkPolicy"), api_pod_labels(manifests))
    (to_pooler,) = [r for r in api["spec"]["egress"] if ports_of(r) == ports_of(rule)]
    (peer,) = to_pooler["to"]
    assert selects(peer["podSelector"]["matchLabels"], pooler["metadata"]["labels"])


def forwarded_client(trusted: str, peer: str, forwarded_for: str) -> str:
    """The client address the app sees, as the gunicorn worker's uvicorn computes it."""
    config = GunicornConfig()
    config.set("forwarded_allow_ips", trusted)
    seen: list[str] = []

    async def app(scope: dict[str, Any], _receive: Any, _send: Any) -> None:
        seen.append(scope["client"][0])

    # The ASGI types are uvicorn's TypedDicts; a plain dict scope is all the middleware reads.
    middleware = ProxyHeadersMiddleware(app, trusted_hosts=config.forwarded_allow_ips)  # type: ignore[arg-type]
    scope: Any = {
        "type": "http",
        "client": (peer, 40000),
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
    }
    asyncio.run(middleware(scope, None, None))  # type: ignore[arg-type]
    return seen[0]


def test_behind_the_ingress_the_client_is_the_last_untrusted_address(manifests: Manifests) -> None:
    trusted = config_data(manifests)["FORWARDED_ALLOW_IPS"]
    # From the ingress controller's pod: the address it appended, not one the client sent.
    assert forwarded_client(trusted, "10.244.3.7", "198.51.100.1, 203.0.113.9") == "203.0.113.9"
    assert forwarded_client(trusted, "10.244.3.7", "203.0.113.9") == "203.0.113.9"
    # Through a load balancer in front of the controller, also at a private address.
    assert forwarded_client(trusted, "10.244.3.7", "203.0.113.9, 172.20.0.4") == "203.0.113.9"
    # A peer at a public address is not trusted: its header is ignored.
    assert forwarded_client(trusted, "203.0.113.50", "198.51.100.1") == "203.0.113.50"


def test_the_ingress_limits_follow_the_settings(manifests: Manifests) -> None:
    settings = configured(manifests)
    ingress = one(manifests, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert int(annotations[prefix + "proxy-body-size"]) == settings.max_request_body_bytes
    assert settings.max_request_body_bytes == DEFAULTS.max_request_body_bytes
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[prefix + timeout]) > settings.request_timeout_seconds, timeout
        assert int(annotations[prefix + timeout]) < settings.gunicorn_timeout, timeout
    assert ingress["spec"]["ingressClassName"] == "nginx"
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    (path,) = rule["http"]["paths"]
    assert path["backend"]["service"] == {"name": "fastapi-service", "port": {"name": "http"}}


def test_keep_alive_outlasts_the_proxies_idle_timeouts(manifests: Manifests) -> None:
    assert DEFAULTS.gunicorn_keepalive > max(PROXY_IDLE_TIMEOUTS.values())
    assert configured(manifests).gunicorn_keepalive > max(PROXY_IDLE_TIMEOUTS.values())


def test_memory_limit_covers_the_workers_and_their_password_hashing(manifests: Manifests) -> None:
    assert "WEB_CONCURRENCY" in config_data(manifests)  # never derived from the CPU limit
    settings = configured(manifests)
    workers = settings.web_concurrency
    assert workers is not None
    pod = api_deployment(manifests)["spec"]["template"]["spec"]
    (tmp,) = [volume for volume in pod["volumes"] if volume["name"] == "tmp"]
    assert tmp["emptyDir"]["medium"] == "Memory"  # counted against the limit
    worst_case = (
        workers * WORKER_MIB
        + MASTER_MIB
        + password_hashing_mb(settings, workers)
        + mebibytes(tmp["emptyDir"]["sizeLimit"])
    )
    resources = api_container(manifests)["resources"]
    limit = mebibytes(resources["limits"]["memory"])
    assert limit >= worst_case * MEMORY_HEADROOM
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    # MEMORY_LIMIT_MB is the limit itself, in MiB.
    (variable,) = [v for v in api_container(manifests)["env"] if v["name"] == "MEMORY_LIMIT_MB"]
    assert variable["valueFrom"]["resourceFieldRef"] == {
        "containerName": api_container(manifests)["name"],
        "resource": "limits.memory",
        "divisor": "1Mi",
    }


def test_the_connection_budget_counts_the_rollout_surge(overlay: str) -> None:
    manifests = app(overlay)
    settings = configured(manifests)
    assert settings.web_concurrency is not None
    per_pod = connection_budget(settings, settings.web_concurrency)
    assert per_pod <= settings.db_max_connections  # no pod warns at boot
    most = one(manifests, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    surge = api_deployment(manifests)["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int)
    budget = SERVICE_CONNECTIONS[overlay]
    # At the HPA's maximum, during a rollout; and before it, with the migration Job.
    assert (most + surge) * settings.db_max_connections <= budget
    assert most * per_pod + 1 <= budget
    if settings.db_pgbouncer:
        # PostgreSQL sees PgBouncer's server connections, its own rollout surge included.
        pooler = named(manifests, "Deployment", "fastapi-service-pgbouncer")["spec"]
        (container,) = pooler["template"]["spec"]["containers"]
        (pool_size,) = [int(e["value"]) for e in container["env"] if e["name"] == "POOL_SIZE"]
        pooled = pooler["replicas"] + pooler["strategy"]["rollingUpdate"]["maxSurge"]
        assert pooled * pool_size + 1 <= SERVICE_CONNECTIONS["production"]


def test_the_readme_budget_is_the_production_overlays() -> None:
    settings = configured(app("production"))
    assert settings.web_concurrency is not None
    most = one(app("production"), "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    surge = api_deployment(app("production"))["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    per_worker = f"({settings.db_pool_size} + {settings.db_max_overflow})"
    total = (most + surge) * connection_budget(settings, settings.web_concurrency)
    arithmetic = f"({most} + {surge}) x {settings.web_concurrency} x {per_worker} = {total}"
    assert arithmetic in " ".join((ROOT / "README.md").read_text().split())


def test_the_argocd_component_runs_the_job_before_the_app(tmp_path: Path) -> None:
    documents = with_components(
        tmp_path, ["base"], ["components/argocd-migration", "overlays/production/common"]
    )
    assert_validates(documents)
    job = one(documents, "Job")
    assert job["metadata"]["annotations"] == {
        "argocd.argoproj.io/hook": "Sync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        "argocd.argoproj.io/sync-wave": "-1",
    }
    # What the Job needs exists by its wave; the app comes in the next one.
    (container,) = job["spec"]["template"]["spec"]["containers"]
    needed = [
        one(documents, "ConfigMap"),
        named(documents, "ServiceAccount", job["spec"]["template"]["spec"]["serviceAccountName"]),
        named(documents, "NetworkPolicy", "fastapi-service-migrate"),
    ]
    for document in needed:
        assert document["metadata"]["annotations"] == {"argocd.argoproj.io/sync-wave": "-1"}
    assert container["envFrom"][0]["configMapRef"]["name"] == needed[0]["metadata"]["name"]
    deployment = api_deployment(documents)
    assert "argocd.argoproj.io/sync-wave" not in deployment["metadata"].get("annotations", {})
    assert container["image"] == api_container(documents)["image"]
    assert DIGEST.search(container["image"])


def test_deploy_sh_waits_for_the_migration_job_before_touching_the_app(overlay: str) -> None:
    commands = deploy_commands(overlay)
    directory = f"deploy/kubernetes/overlays/{overlay}"
    the_namespace = one(namespace(overlay), "Namespace")["metadata"]["name"]
    job = one(migration(overlay), "Job")
    job_name = job["metadata"]["name"]
    manifests = app(overlay)
    deployments = [d["metadata"]["name"] for d in of_kind(manifests, "Deployment")]
    secrets = sorted(
        {
            source["secretRef"]["name"]
            for _, template in pod_templates([*manifests, job])
            for source in template["spec"]["containers"][0]["envFrom"]
            if "secretRef" in source
        }
    )
    ns = [KUBECTL, "-n", the_namespace]
    assert commands[:6] == [
        [KUBECTL, "apply", "-k", f"{directory}/namespace"],
        [*ns, "get", "secret", *secrets],
        [*ns, "delete", "job", job_name, "--ignore-not-found", "--wait=true"],
        [KUBECTL, "apply", "-k", f"{directory}/migration"],
        [
            *ns,
            "wait",
            "--for=condition=complete",
            f"job/{job_name}",
            f"--timeout={job['spec']['activeDeadlineSeconds'] + 60}s",
        ],
        [KUBECTL, "apply", "-k", directory],
    ]
    # Then each Deployment restarts when a secret it reads has changed, and is waited for.
    patches = commands[6 : 6 + len(deployments)]
    assert [command[3:6] for command in patches] == [
        ["patch", "deployment", d] for d in deployments
    ]
    assert commands[6 + len(deployments) :] == [
        [*ns, "rollout", "status", f"deployment/{name}", "--timeout=10m"] for name in deployments
    ]


def test_make_deploy_runs_deploy_sh() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "deploy", "OVERLAY=production", "PRINT=1"],
        env={**os.environ, "KUBECTL": KUBECTL},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    printed = [line for line in result.stdout.splitlines() if line.startswith(KUBECTL)]
    assert [shlex.split(line) for line in printed] == deploy_commands("production")


def test_image_user_is_numeric_and_not_root() -> None:
    uid, _, gid = dockerfile_instruction("USER").partition(":")
    assert uid.isdigit()
    assert gid.isdigit()
    assert int(uid) != 0


def test_dockerfile_builds_without_buildkit_and_passes_hadolint() -> None:
    text = dockerfile()
    assert not text.startswith("# syntax")
    assert "--mount" not in text
    assert_hadolint_passes("Dockerfile")


def test_base_image_is_pinned_by_digest_where_dependabot_updates_it() -> None:
    """A literal ``FROM image:tag@digest`` line (Dependabot reads no ARG), used by default.

    ``PYTHON_IMAGE`` may name a mirror or local tag instead; by default both stages
    build on the pinned stage.
    """
    text = dockerfile()
    pinned = pinned_base().stage
    first_from = text.index("\nFROM ")
    assert f"\nARG PYTHON_IMAGE={pinned}\n" in text[: first_from + 1]
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", text, re.MULTILINE)
    assert stages[1:] == [("${PYTHON_IMAGE}", "builder"), ("${PYTHON_IMAGE}", "runtime")]


def test_lock_files_cover_the_python_of_the_image_and_of_the_venv() -> None:
    """One resolution for both: universal from requires-python's floor, the image above it."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    floor = requires.removeprefix(">=")
    assert re.fullmatch(r"\d+\.\d+", floor), requires
    for lock in sorted((ROOT / "requirements").glob("*.txt")):
        header = lock.read_text().splitlines()[1]
        assert f"--universal --python-version {floor} " in header, lock.name
    assert f"--universal --python-version {floor} " in (ROOT / "Makefile").read_text()
    assert version_tuple(pinned_base().python) >= version_tuple(floor)


def test_dockerignore_is_an_allow_list_covering_what_the_dockerfile_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = [pattern.removeprefix("!").rstrip("/") for pattern in patterns if pattern[0] == "!"]
    copied = [
        source
        for line in dockerfile().splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    ]
    assert copied
    assert all(any(source.startswith(path) for path in allowed) for source in copied), copied
    # Re-excluded after the allowed directories, so they win inside them too.
    assert {"**/.*", "**/*.pem", "**/*.key"} <= set(patterns[patterns.index(f"!{allowed[-1]}") :])


def test_compose_services_are_wired_safely() -> None:
    services = compose()["services"]
    assert "ports" not in services["db"]
    assert all(port.startswith("127.0.0.1:") for port in services["api"]["ports"])
    # The metrics listener is published only by the opt-in override, and on loopback.
    assert all(not port.endswith(f":{DEFAULTS.metrics_port}") for port in services["api"]["ports"])
    override = yaml.safe_load((ROOT / "docker/compose.metrics-port.yaml").read_text())
    (published,) = override["services"]["api"]["ports"]
    assert published.startswith("127.0.0.1:")
    assert published.endswith(f":{DEFAULTS.metrics_port}")
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert READY_PATH in " ".join(services["api"]["healthcheck"]["test"])
    grace = int(services["api"]["stop_grace_period"].removesuffix("s"))
    assert grace > DEFAULTS.shutdown_drain_seconds + DEFAULTS.gunicorn_graceful_timeout
    for name in ("api", "migrate"):
        assert set(services[name]["environment"]) <= SETTINGS_VARIABLES, name
        assert services[name]["read_only"] is True, name


def test_compose_sizes_limits_restarts_and_rotates_logs() -> None:
    services = compose()["services"]
    api, migrate = services["api"], services["migrate"]
    environment = {key: compose_default(str(value)) for key, value in api["environment"].items()}
    limits = {
        key: compose_default(str(value))
        for key, value in api["deploy"]["resources"]["limits"].items()
    }
    # Explicit workers, never derived from the host's CPU count.
    assert int(environment["WEB_CONCURRENCY"]) >= 1
    assert float(limits["cpus"]) > 0
    assert limits["memory"] == f"{environment['MEMORY_LIMIT_MB']}M"
    assert migrate["deploy"] == api["deploy"]
    assert api["restart"] == "unless-stopped"
    assert migrate["restart"] == "no"  # one-shot: a failure stops the start-up
    assert {services[name]["restart"] for name in ("db", "redis")} == {"unless-stopped"}
    for name in ("api", "migrate"):
        (tmp,) = services[name]["tmpfs"]
        assert re.fullmatch(r"/tmp:size=\d+m(,[a-z]+)*", tmp), tmp
    for name, service in services.items():
        logging = service["logging"]
        assert logging["driver"] == "json-file", name
        assert {"max-size", "max-file"} <= logging["options"].keys(), name


def test_the_pgbouncer_overlay_points_the_app_and_the_job_at_the_right_servers() -> None:
    documents = app("production-pgbouncer")
    for manifests in (documents, migration("production-pgbouncer")):
        # The Job sees it too: it refuses to migrate through PgBouncer.
        assert configured(manifests).db_pgbouncer is True
    template = named(documents, "Deployment", "fastapi-service-pgbouncer")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    service = named(documents, "Service", "fastapi-service-pgbouncer")
    assert selects(service["spec"]["selector"], template["metadata"]["labels"])
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    # Production's labels on what it adds.
    production_labels = api_deployment(app("production"))["metadata"]["labels"]
    for document in documents:
        labels = document["metadata"]["labels"]
        for label in ("app.kubernetes.io/instance", "app.kubernetes.io/version"):
            assert labels[label] == production_labels[label], document["metadata"]["name"]


def test_the_pgbouncer_image_and_compose_override_are_sound() -> None:
    assert_hadolint_passes("docker/pgbouncer/Dockerfile")
    override = yaml.safe_load((ROOT / "docker/compose.pgbouncer.yaml").read_text())["services"]
    assert (ROOT / override["pgbouncer"]["build"]).is_dir()  # relative to compose.yaml
    assert "@pgbouncer:6432/" in override["api"]["environment"]["DATABASE_URL"]
    assert override["api"]["environment"]["DB_PGBOUNCER"] == "true"
    assert "@db:5432/" in override["migrate"]["environment"]["MIGRATIONS_DATABASE_URL"]
    for name in ("api", "migrate"):
        assert set(override[name]["environment"]) <= SETTINGS_VARIABLES, name

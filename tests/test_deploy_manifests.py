"""Deployment files agree with the app and with each other, and validate offline.

No cluster is needed: each kustomize overlay is rendered with the real ``kubectl``
and validated against the Kubernetes schemas; the Dockerfile and compose file are
read as text and YAML. A probe path, port, command or setting that drifts from the
app fails here, not in a rollout.
"""

import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.core.config import Settings
from app.ops.metrics import METRICS_PATH
from app.ops.probes import HEALTH_PATH, READY_PATH
from tests.support.dockerfile import dockerfile, pinned_base
from tests.support.paths import BIN, ROOT

KUBERNETES_VERSION = "1.32.0"
KUSTOMIZE = ROOT / "deploy/kubernetes"
OVERLAYS = ["staging", "production"]
MIGRATION_COMMAND = ["alembic", "upgrade", "head"]
SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}
DEFAULTS = Settings(_env_file=None)


def render(overlay: str | Path) -> list[dict[str, Any]]:
    """An overlay of the repository's by name, or any kustomization directory."""
    directory = overlay if isinstance(overlay, Path) else KUSTOMIZE / "overlays" / overlay
    result = subprocess.run(
        [str(BIN / "kubectl"), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module", params=OVERLAYS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(request.param)


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [document for document in manifests if document["kind"] == kind]
    return found


def named(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in manifests if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def api_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = one(manifests, "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def config_data(manifests: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = one(manifests, "ConfigMap")["data"]
    return data


def pod_specs(manifests: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in ("Deployment", "Job"):
        yield kind, one(manifests, kind)["spec"]["template"]["spec"]


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


def test_every_resource_validates_strictly(manifests: list[dict[str, Any]]) -> None:
    for document in manifests:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_probes_and_ports_match_the_app(manifests: list[dict[str, Any]]) -> None:
    container = api_container(manifests)
    for probe, path in (
        ("startupProbe", HEALTH_PATH),
        ("livenessProbe", HEALTH_PATH),
        ("readinessProbe", READY_PATH),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
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


def test_metrics_are_found_on_their_own_port_only(manifests: list[dict[str, Any]]) -> None:
    template = one(manifests, "Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(DEFAULTS.metrics_port)
    assert annotations["prometheus.io/path"] == METRICS_PATH
    service = named(manifests, "Service", "fastapi-service-metrics")
    assert service["spec"]["clusterIP"] == "None"  # every pod scraped, none balanced
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": DEFAULTS.metrics_port, "targetPort": "metrics"}
    ]
    assert "annotations" not in service["metadata"]  # scraped once, through the pods


def test_the_servicemonitor_component_scrapes_the_metrics_port(tmp_path: Path) -> None:
    kubernetes = Path(os.path.relpath(KUSTOMIZE, tmp_path))  # kustomize refuses absolute
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "fastapi-service",
                "resources": [str(kubernetes / "overlays/production")],
                "components": [str(kubernetes / "components/servicemonitor")],
            }
        )
    )
    documents = render(tmp_path)
    monitor = one(documents, "ServiceMonitor")  # a CRD: no schema to validate it against
    service = named(documents, "Service", "fastapi-service-metrics")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": METRICS_PATH, "interval": "15s"}
    ]
    # The job label the example alert rules select on.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "fastapi-service"
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]


def test_app_and_migration_commands_match_the_image_and_compose(
    manifests: list[dict[str, Any]],
) -> None:
    deployment = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    job = one(manifests, "Job")["spec"]["template"]["spec"]["containers"][0]
    assert deployment["command"] == json.loads(dockerfile_instruction("CMD"))
    assert job["command"] == MIGRATION_COMMAND
    assert compose()["services"]["migrate"]["command"] == MIGRATION_COMMAND
    assert job["image"] == deployment["image"]
    assert job["envFrom"] == deployment["envFrom"]


def test_grace_period_covers_prestop_and_graceful_timeout(manifests: list[dict[str, Any]]) -> None:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    graceful = int(config_data(manifests)["GUNICORN_GRACEFUL_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] > int(pre_stop[1]) + graceful


def test_pods_run_locked_down_as_the_image_user(manifests: list[dict[str, Any]]) -> None:
    image_uid = int(dockerfile_instruction("USER").split(":")[0])
    for kind, pod in pod_specs(manifests):
        assert pod["automountServiceAccountToken"] is False, kind
        assert pod["securityContext"]["runAsNonRoot"] is True, kind
        assert pod["securityContext"]["runAsUser"] == image_uid, kind
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, kind
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }, kind
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], kind
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), kind
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), kind
    assert one(manifests, "ServiceAccount")["automountServiceAccountToken"] is False


def test_rollout_never_drops_below_desired_and_spreads_across_nodes(
    manifests: list[dict[str, Any]],
) -> None:
    spec = one(manifests, "Deployment")["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
    job = one(manifests, "Job")["spec"]
    assert job["backoffLimit"] >= 1
    assert job["ttlSecondsAfterFinished"] > 0


def test_configured_settings_exist_and_are_valid(manifests: list[dict[str, Any]]) -> None:
    data = config_data(manifests)
    assert set(data) <= SETTINGS_VARIABLES
    # The real validation, with stand-ins for the two values that come from the Secret.
    Settings.model_validate(
        {key.lower(): value for key, value in data.items()}
        | {
            "database_url": "postgresql://app:secret@db.internal:5432/app",
            "jwt_secret_key": "k" * 32,
            "rate_limit_storage_url": "redis://cache.internal:6379/0",
        }
    )


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


def test_the_pgbouncer_overlay_validates_and_points_the_app_at_its_pooler() -> None:
    documents = render("production-pgbouncer")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    assert config_data(documents)["DB_PGBOUNCER"] == "true"
    assert {d["metadata"].get("namespace") for d in documents} == {"fastapi-service"}
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    template = deployments["fastapi-service-pgbouncer"]["spec"]["template"]
    pooler = template["spec"]
    (container,) = pooler["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pooler["securityContext"]["runAsNonRoot"] is True
    service = next(
        d
        for d in documents
        if d["metadata"]["name"] == "fastapi-service-pgbouncer" and d["kind"] == "Service"
    )
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]


def test_the_pgbouncer_image_and_compose_override_are_sound() -> None:
    assert_hadolint_passes("docker/pgbouncer/Dockerfile")
    override = yaml.safe_load((ROOT / "docker/compose.pgbouncer.yaml").read_text())["services"]
    assert (ROOT / override["pgbouncer"]["build"]).is_dir()  # relative to compose.yaml
    assert "@pgbouncer:6432/" in override["api"]["environment"]["DATABASE_URL"]
    assert override["api"]["environment"]["DB_PGBOUNCER"] == "true"
    assert "@db:5432/" in override["migrate"]["environment"]["MIGRATIONS_DATABASE_URL"]
    for name in ("api", "migrate"):
        assert set(override[name]["environment"]) <= SETTINGS_VARIABLES, name

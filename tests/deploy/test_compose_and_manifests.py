"""docker-compose.yml and deploy/ must agree with the code they run.

Nothing here starts a container: the files are checked by the ecosystem's own validators (check-jsonschema with
the Compose Specification, kubernetes-validate), against the settings classes the services read, and against the
ASGI apps their commands name.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from ezone.services import SERVICES

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
DEPLOY_DIR = REPO / "deploy"
KUSTOMIZATION = DEPLOY_DIR / "kustomization.yaml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
# Mounted into the compose collector; it configures a program, so it lives outside deploy/.
COLLECTOR_CONFIG = REPO / "compose" / "otel-collector.yaml"
# Templates an operator copies; kustomize must not apply them (see secret.example.yaml).
TEMPLATE_SUFFIX = ".example.yaml"

# Compose services and Kubernetes Deployments carry the names the CLI gives the services.
SERVICE_ENTRIES = {entry.name: entry for entry in SERVICES}
INIT_NAME = "ezone-init"

# Standard variables the OpenTelemetry SDK reads itself, so no Settings field is needed.
OTEL_SDK_VARIABLES = frozenset(
    {
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
    }
)
REQUIRED_SERVICE_VARIABLES = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "EZONE_JWKS_URL")


def settings_classes_run_by(name: str) -> list[type[BaseSettings]]:
    """The classes the app builds its settings from (the init step runs the CLI for every service)."""
    entries = SERVICE_ENTRIES.values() if name == INIT_NAME else [SERVICE_ENTRIES[name]]
    return [entry.definition.settings_class for entry in entries]


@cache
def variables_read_by(settings: type[BaseSettings]) -> frozenset[str]:
    """Environment names a Settings class reads, as pydantic-settings resolves them."""
    prefix = settings.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
        else:
            names.add(f"{prefix}{field_name}".upper())
    return frozenset(names)


def allowed_variables(name: str) -> frozenset[str]:
    return OTEL_SDK_VARIABLES.union(*(variables_read_by(settings) for settings in settings_classes_run_by(name)))


def assert_environment_parses(name: str, environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The values, not only the names, must be ones the Settings classes accept."""
    for variable, value in environment.items():
        monkeypatch.setenv(variable, str(value))
    for settings in settings_classes_run_by(name):
        settings()


def module_file(module: str) -> Path | None:
    """Where `module` lives in the source tree, looked up in the package roots pyproject.toml installs."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    roots = pyproject["tool"]["setuptools"]["packages"]["find"]["where"]
    relative = Path(*module.split(".")).with_suffix(".py")
    return next((REPO / root / relative for root in roots if (REPO / root / relative).is_file()), None)


def top_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
    return names


def assert_uvicorn_runs_the_service(command: list[str], service: str) -> int:
    """Checks `uvicorn module:attr ... --port N` against the source tree and the CLI's view; returns N."""
    entry = SERVICE_ENTRIES[service]
    assert command[0] == "uvicorn", command
    module, _, attribute = command[1].partition(":")
    path = module_file(module)
    assert path is not None, f"{module} is not a module file under any package root in pyproject.toml"
    assert attribute in top_level_names(path), f"{path.relative_to(REPO)} defines no top-level {attribute!r}"
    assert command[1] == entry.asgi_app, f"{service} runs {command[1]}, the CLI runs {entry.asgi_app}"
    port = int(command[command.index("--port") + 1])
    assert port == entry.port, f"{service} listens on {port}, the CLI uses {entry.port}"
    return port


def run_validator(command: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """A validator installed with the dev dependencies, from this interpreter's environment."""
    executable = Path(sys.executable).parent / command
    return subprocess.run([str(executable), *arguments], capture_output=True, text=True, timeout=300, check=False)


def test_every_setting_a_service_reads_is_documented_in_docs_deploy_md():
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", DEPLOY_DOC.read_text(), flags=re.MULTILINE))
    read = set().union(*(variables_read_by(entry.definition.settings_class) for entry in SERVICE_ENTRIES.values()))

    assert not read - documented, f"docs/deploy.md has no table row for {sorted(read - documented)}"


# --- docker-compose.yml -------------------------------------------------------------------


@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_environment(service: str) -> dict[str, str]:
    environment = compose()["services"][service].get("environment", {})
    if isinstance(environment, list):
        return dict(entry.partition("=")[::2] for entry in environment)
    return environment


def test_compose_file_passes_check_jsonschema_with_the_compose_specification():
    """The ecosystem's own validator, with the Compose Specification schema it ships (no network)."""
    validated = run_validator("check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE))

    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_compose_defines_the_four_services_and_the_init_step():
    assert set(SERVICE_ENTRIES) | {INIT_NAME} <= set(compose()["services"])


@pytest.mark.parametrize("service", [*SERVICE_ENTRIES, INIT_NAME])
def test_every_compose_service_environment_name_is_a_setting_the_code_reads(service, monkeypatch):
    environment = compose_environment(service)

    unknown = set(environment) - allowed_variables(service)

    assert not unknown, f"{service} sets variables no settings class reads: {sorted(unknown)}"
    if service != INIT_NAME:
        missing = [name for name in REQUIRED_SERVICE_VARIABLES if name not in environment]
        assert not missing, f"{service} does not set {missing}"
    assert_environment_parses(service, environment, monkeypatch)


@pytest.mark.parametrize("service", SERVICE_ENTRIES)
def test_compose_commands_point_at_real_asgi_apps(service):
    definition = compose()["services"][service]

    port = assert_uvicorn_runs_the_service(definition["command"], service)

    assert f"{port}:{port}" in definition["ports"]
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(definition["healthcheck"]["test"])


def test_compose_init_step_gates_the_services():
    assert compose()["services"][INIT_NAME]["command"] == ["sh", "-c", "ezone topics create && ezone migrate"]
    for service in SERVICE_ENTRIES:
        depends_on = compose()["services"][service]["depends_on"]
        assert depends_on[INIT_NAME] == {"condition": "service_completed_successfully"}, service


def test_collector_config_is_mounted_and_its_pipelines_use_defined_components():
    config = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    mounts = compose()["services"]["otel-collector"]["volumes"]

    assert any(mount.startswith(f"./{COLLECTOR_CONFIG.relative_to(REPO)}:") for mount in mounts)
    for name, pipeline in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            undefined = set(pipeline.get(kind, [])) - set(config.get(kind, {}))
            assert not undefined, f"pipeline {name} uses undefined {kind}: {sorted(undefined)}"


# --- deploy/ (Kubernetes) -----------------------------------------------------------------


@cache
def kustomization() -> dict:
    return yaml.safe_load(KUSTOMIZATION.read_text())


def manifest_files() -> list[Path]:
    return sorted(path for path in DEPLOY_DIR.glob("*.yaml") if path != KUSTOMIZATION)


@cache
def manifests() -> list[dict]:
    return [doc for path in manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in manifests() if doc["kind"] == kind}


def pod_containers(workload: dict) -> list[dict]:
    return workload["spec"]["template"]["spec"]["containers"]


def container_environment(container: dict) -> dict[str, str]:
    """Variables a container gets from env and from the ConfigMaps and Secrets it loads whole."""
    config_maps, secrets = objects("ConfigMap"), objects("Secret")
    environment = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            environment.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            environment.update(secrets[source["secretRef"]["name"]]["stringData"])
    environment.update({entry["name"]: entry.get("value", "") for entry in container.get("env", [])})
    return environment


def test_every_file_in_deploy_passes_kubernetes_validate():
    """Kubernetes' own schemas, strictly (an unknown field fails); HTTPRoute and Kustomization, whose schemas are not
    Kubernetes', are warned about and checked by the tests below."""
    files = sorted(DEPLOY_DIR.glob("*.yaml"))
    validated = run_validator("kubernetes-validate", "--strict", "--quiet", *map(str, files))

    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_kubernetes_manifests_are_well_formed():
    for path in manifest_files():
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert docs, f"{path.name} holds no document"
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), path.name

    listed = kustomization()["resources"]
    applied = [path.name for path in manifest_files() if not path.name.endswith(TEMPLATE_SUFFIX)]
    assert len(listed) == len(set(listed)), "kustomization.yaml lists a file twice"
    assert sorted(listed) == sorted(applied), "kustomization.yaml and the files in deploy/ disagree"


def test_kubernetes_workloads_cover_every_service_and_run_as_non_root():
    workloads = {**objects("Deployment"), **objects("Job")}

    assert set(SERVICE_ENTRIES) | {INIT_NAME} <= set(workloads)
    for name, workload in workloads.items():
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True, name


@pytest.mark.parametrize("name", [*SERVICE_ENTRIES, INIT_NAME])
def test_kubernetes_environment_names_are_settings_the_code_reads(name, monkeypatch):
    workload = {**objects("Deployment"), **objects("Job")}[name]
    (container,) = pod_containers(workload)
    environment = container_environment(container)

    unknown = set(environment) - allowed_variables(name)

    assert not unknown, f"{name} sets variables no settings class reads: {sorted(unknown)}"
    if name != INIT_NAME:
        missing = [variable for variable in REQUIRED_SERVICE_VARIABLES if variable not in environment]
        assert not missing, f"{name} does not get {missing}"
    assert_environment_parses(name, environment, monkeypatch)


@pytest.mark.parametrize("name", SERVICE_ENTRIES)
def test_kubernetes_deployments_probe_health_endpoints_and_run_real_apps(name):
    (container,) = pod_containers(objects("Deployment")[name])
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}

    uvicorn_port = assert_uvicorn_runs_the_service(container["command"], name)

    assert ports == {"http": uvicorn_port}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, f"{name} {probe}"
    assert {"requests", "limits"} <= set(container["resources"]), name


@pytest.mark.parametrize("name", SERVICE_ENTRIES)
def test_every_deployment_has_a_service_autoscaler_and_disruption_budget(name):
    pod_labels = objects("Deployment")[name]["spec"]["template"]["metadata"]["labels"]

    def selects_the_pods(selector: dict) -> bool:
        return selector.items() <= pod_labels.items()

    assert selects_the_pods(objects("Service")[name]["spec"]["selector"])
    assert selects_the_pods(objects("PodDisruptionBudget")[name]["spec"]["selector"]["matchLabels"])
    autoscaler = objects("HorizontalPodAutoscaler")[name]["spec"]
    assert autoscaler["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert autoscaler["minReplicas"] >= 2


def test_public_routes_reach_existing_services_with_the_prefix_stripped():
    services = objects("Service")
    rules = [rule for route in objects("HTTPRoute").values() for rule in route["spec"]["rules"]]
    routes = {match["path"]["value"]: rule for rule in rules for match in rule["matches"]}

    assert {path: [backend["name"] for backend in rule["backendRefs"]] for path, rule in routes.items()} == {
        "/plans": ["plans"],
        "/results": ["results"],
        "/catalog": ["services-catalog"],
        "/notifications": ["notifications"],
        "/": ["notifications"],
    }
    strip_prefix = [
        {"type": "URLRewrite", "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}
    ]
    for path, rule in routes.items():
        # The APIs live at the services' roots; the rest of the host (the board page and its calls) is the
        # notifications service's own paths.
        assert rule.get("filters", []) == ([] if path == "/" else strip_prefix), path
        for backend in rule["backendRefs"]:
            assert backend["port"] in {port["port"] for port in services[backend["name"]]["spec"]["ports"]}, path

"""deploy/k8s: every manifest valid, hardened, probed, and consistent with the others.

Checked offline: built-in kinds against the Kubernetes JSON schemas that kubernetes-validate
ships, KEDA and kustomize objects by their documented fields, then cross-references (labels
and selectors, Services and ports, ConfigMap and Secret keys, commands and packages). Each
check returns its problems; the tests at the end prove each check can fail.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from agentloom_common.bus import JOBS_QUEUE

# The oldest Kubernetes these manifests support (gRPC probes are GA from 1.27).
K8S_MIN_VERSION = "1.29"
IMAGE = "agentloom"
KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
}
BUILTIN_API_VERSIONS = {"v1", "apps/v1", "batch/v1", "policy/v1"}
ADDRESS_SETTINGS = {
    "AGENTLOOM_GRAPHS_ADDR": ("agentloom_graphs", "serve"),
    "AGENTLOOM_BLOCKS_ADDR": ("agentloom_blocks", "serve"),
    "AGENTLOOM_BILLING_ADDR": ("agentloom_billing", "serve"),
    "AGENTLOOM_EXECUTOR_ADDR": ("agentloom_executor", "api"),
    "AGENTLOOM_NOTIFY_ADDR": ("agentloom_notify", "serve"),
}
EXTERNAL_URLS = {
    "AGENTLOOM_DATABASE_URL": {"postgresql+asyncpg"},
    "AGENTLOOM_AMQP_URL": {"amqp", "amqps"},
    "AGENTLOOM_REDIS_URL": {"redis", "rediss"},
}
PLACEHOLDER = "CHANGE_ME"

# Kinds no bundled schema covers: hand-written schemas of the fields their docs define.
CUSTOM_SCHEMA_FILES = {
    "ScaledObject": "keda-scaledobject.json",
    "TriggerAuthentication": "keda-triggerauthentication.json",
    "Kustomization": "kustomization.json",
}
SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"

Doc = dict[str, Any]


# ---- reading ----------------------------------------------------------------------------------


def load_documents(root: Path) -> list[tuple[Path, Doc]]:
    documents = []
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        with path.open() as f:
            for document in yaml.safe_load_all(f):
                if document is not None:
                    documents.append((path, document))
    return documents


@pytest.fixture(scope="module")
def k8s_root(repo_root: Path) -> Path:
    return repo_root / "deploy" / "k8s"


@pytest.fixture(scope="module")
def documents(k8s_root: Path) -> list[tuple[Path, Doc]]:
    found = load_documents(k8s_root)
    assert found, "no manifests under deploy/k8s"
    return found


@pytest.fixture(scope="module")
def docs(documents: list[tuple[Path, Doc]]) -> list[Doc]:
    return [document for _, document in documents]


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


def pod_spec(deployment: Doc) -> Doc:
    spec: Doc = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Doc, *, init: bool = True) -> Iterator[Doc]:
    spec = pod_spec(deployment)
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])


def command_of(container: Doc) -> tuple[str, str] | None:
    command = container.get("command") or []
    if len(command) not in (3, 4) or command[:2] != ["python", "-m"]:
        return None
    return str(command[2]), str(command[3]) if len(command) == 4 else "serve"


def env_value(container: Doc, name: str) -> str | None:
    for item in container.get("env", []):
        if item["name"] == name:
            value = item.get("value")
            return None if value is None else str(value)
    return None


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def template_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"].get("labels", {})
    return labels


def port_number(container: Doc, port: int | str) -> int | None:
    """A probe's or Service's port, resolved against the container's declared ports."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    return None


# ---- checks -----------------------------------------------------------------------------------


def kind_problems(docs: list[Doc]) -> list[str]:
    problems = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        name = (doc.get("metadata") or {}).get("name")
        if key not in KNOWN_KINDS:
            problems.append(f"{key}: unknown apiVersion/kind")
        if key[1] != "Kustomization":
            if not name:
                problems.append(f"{key}: no metadata.name")
            elif (key[1], name) in seen:
                problems.append(f"{key[1]}/{name} is defined twice")
            seen.add((str(key[1]), str(name)))
    return problems


def custom_schema_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for doc in docs:
        schema_file = CUSTOM_SCHEMA_FILES.get(doc.get("kind", ""))
        if schema_file is None:
            continue
        schema = json.loads((SCHEMAS_DIR / schema_file).read_text())
        validator = jsonschema.Draft202012Validator(schema)
        for error in validator.iter_errors(doc):
            location = "/".join(map(str, error.absolute_path))
            problems.append(f"{doc['kind']}: {location}: {error.message}")
    return problems


def kustomization_problems(documents: list[tuple[Path, Doc]]) -> list[str]:
    problems = []
    kustomizations = [(p, d) for p, d in documents if d.get("kind") == "Kustomization"]
    if not kustomizations:
        return ["no kustomization.yaml"]
    namespaces = {d["metadata"]["name"] for _, d in documents if d.get("kind") == "Namespace"}
    listed: set[Path] = set()
    for path, kustomization in kustomizations:
        for resource in kustomization.get("resources", []):
            target = (path.parent / resource).resolve()
            listed.add(target)
            if not target.exists():
                problems.append(f"{path.name}: resource {resource} does not exist")
        namespace = kustomization.get("namespace")
        if namespace and namespace not in namespaces:
            problems.append(f"{path.name}: namespace {namespace} is not created by any manifest")
        images = {image["name"] for image in kustomization.get("images", [])}
        if IMAGE not in images:
            problems.append(f"{path.name}: no images entry to set the {IMAGE} image")
        for other, _ in documents:
            if other.parent == path.parent and other.name != path.name and other not in listed:
                problems.append(f"{other.name} is not listed in {path.name}'s resources")
    return sorted(set(problems))


def resource_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for name, deployment in of_kind(docs, "Deployment").items():
        for container in containers(deployment):
            resources = container.get("resources") or {}
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(bound) or {}):
                        problems.append(f"{name}/{container['name']}: no {bound}.{resource}")
    return problems


def security_problems(docs: list[Doc]) -> list[str]:
    problems = []
    accounts = of_kind(docs, "ServiceAccount")
    for name, deployment in of_kind(docs, "Deployment").items():
        spec = pod_spec(deployment)
        pod = spec.get("securityContext") or {}
        if pod.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot must be true")
        if pod.get("runAsUser", 1) == 0:
            problems.append(f"{name}: runs as uid 0")
        if (pod.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: seccompProfile must be RuntimeDefault")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: needs no API token, so must not mount one")
        if spec.get("serviceAccountName") not in accounts:
            problems.append(f"{name}: its ServiceAccount is not defined")
        for container in containers(deployment):
            where = f"{name}/{container['name']}"
            context = container.get("securityContext") or {}
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem must be true")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if context.get("privileged"):
                problems.append(f"{where}: must not be privileged")
            if context.get("runAsNonRoot") is False or context.get("runAsUser") == 0:
                problems.append(f"{where}: overrides the pod's non-root user")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: must drop ALL capabilities")
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            if "/tmp" not in mounts:
                problems.append(f"{where}: read-only root needs a writable /tmp volume")
    return problems


def probe_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for name, deployment in of_kind(docs, "Deployment").items():
        for container in containers(deployment, init=False):
            where = f"{name}/{container['name']}"
            listen = env_value(container, "AGENTLOOM_LISTEN_ADDR")
            http_port = env_value(container, "AGENTLOOM_PORT")
            for probe_name in ("livenessProbe", "readinessProbe"):
                probe = container.get(probe_name)
                if not probe:
                    problems.append(f"{where}: no {probe_name}")
                elif listen is not None:
                    port = (probe.get("grpc") or {}).get("port")
                    if port is None:
                        problems.append(f"{where}: {probe_name} of a gRPC server must be grpc")
                    elif (
                        port != int(listen.rsplit(":", 1)[1])
                        or port_number(container, port) is None
                    ):
                        problems.append(f"{where}: {probe_name} port {port} is not {listen}")
                elif http_port is not None:
                    get = probe.get("httpGet") or {}
                    if not get.get("path"):
                        problems.append(f"{where}: {probe_name} of the gateway must be httpGet")
                    elif port_number(container, get.get("port", "")) != int(http_port):
                        problems.append(f"{where}: {probe_name} is not on AGENTLOOM_PORT")
                else:
                    problems.append(f"{where}: neither a gRPC nor an HTTP server: what to probe?")
    return problems


def selector_problems(docs: list[Doc]) -> list[str]:
    problems = []
    deployments = of_kind(docs, "Deployment")
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"].get("matchLabels", {})
        if not selects(selector, template_labels(deployment)):
            problems.append(f"Deployment {name}: selector {selector} misses its pod labels")
        others = [
            n for n, d in deployments.items() if n != name and selects(selector, template_labels(d))
        ]
        if others:
            problems.append(f"Deployment {name}: selector also matches {others}")
    for name, service in of_kind(docs, "Service").items():
        selector = service["spec"].get("selector", {})
        matched = [d for d in deployments.values() if selects(selector, template_labels(d))]
        if len(matched) != 1:
            problems.append(f"Service {name}: selects {len(matched)} Deployments, not one")
            continue
        server = next(iter(containers(matched[0], init=False)))
        for port in service["spec"]["ports"]:
            if port_number(server, port.get("targetPort", port["port"])) is None:
                problems.append(f"Service {name}: targetPort {port.get('targetPort')} not declared")
    budgets = of_kind(docs, "PodDisruptionBudget")
    covered: set[str] = set()
    for name, budget in budgets.items():
        selector = budget["spec"]["selector"].get("matchLabels", {})
        matched = [n for n, d in deployments.items() if selects(selector, template_labels(d))]
        if len(matched) != 1:
            problems.append(f"PodDisruptionBudget {name}: selects {matched}, not one Deployment")
        covered.update(matched)
    for name in sorted(set(deployments) - covered):
        problems.append(f"Deployment {name}: no PodDisruptionBudget")
    return problems


def command_problems(
    docs: list[Doc],
    packages: dict[str, Path],
    subcommands: dict[str, frozenset[str]],
    schema_owners: frozenset[str],
) -> list[str]:
    problems = []
    for name, deployment in of_kind(docs, "Deployment").items():
        for container in containers(deployment):
            where = f"{name}/{container['name']}"
            if container.get("image") != IMAGE:
                problems.append(f"{where}: image must be `{IMAGE}` (kustomize sets the tag)")
            parsed = command_of(container)
            if parsed is None:
                problems.append(f"{where}: command is not ['python', '-m', 'agentloom_<svc>', ...]")
                continue
            package, subcommand = parsed
            if package not in packages:
                problems.append(f"{where}: {package} is no package under services/<svc>/src/")
            if subcommand not in subcommands.get(package, frozenset({"serve", "migrate"})):
                problems.append(f"{where}: {package} has no command {subcommand!r}")
        served = [command_of(c) for c in containers(deployment, init=False)]
        migrations = [command_of(c) for c in pod_spec(deployment).get("initContainers", [])]
        for parsed in served:
            if parsed and parsed[0] in schema_owners and (parsed[0], "migrate") not in migrations:
                problems.append(f"{name}: {parsed[0]} serves before its migrate init container")
    return problems


def environment_problems(docs: list[Doc], settings_env: frozenset[str]) -> list[str]:
    problems = []
    config_maps = {n: d.get("data", {}) for n, d in of_kind(docs, "ConfigMap").items()}
    secrets = {
        n: {**d.get("data", {}), **d.get("stringData", {})}
        for n, d in of_kind(docs, "Secret").items()
    }
    for name, data in config_maps.items():
        for key in sorted(set(data) - settings_env):
            problems.append(f"ConfigMap {name}: {key} is not an Agentloom setting")
    for name, deployment in of_kind(docs, "Deployment").items():
        for container in containers(deployment):
            where = f"{name}/{container['name']}"
            for source in container.get("envFrom", []):
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                pool = config_maps if "configMapRef" in source else secrets
                if ref.get("name") not in pool:
                    problems.append(f"{where}: envFrom {ref.get('name')} does not exist")
            for item in container.get("env", []):
                if item["name"] not in settings_env:
                    problems.append(f"{where}: {item['name']} is not an Agentloom setting")
                value_from = item.get("valueFrom") or {}
                for ref_kind, pool in (("configMapKeyRef", config_maps), ("secretKeyRef", secrets)):
                    ref = value_from.get(ref_kind)
                    if ref and ref["key"] not in pool.get(ref["name"], {}):
                        problems.append(f"{where}: {ref_kind} {ref['name']}/{ref['key']} missing")
            if env_value(container, "AGENTLOOM_API_KEY_PEPPER") is not None:
                problems.append(f"{where}: the pepper must come from a Secret")
            uses_pepper = any(
                i["name"] == "AGENTLOOM_API_KEY_PEPPER" for i in container.get("env", [])
            )
            parsed = command_of(container)
            if uses_pepper and (not parsed or parsed[0] != "agentloom_gateway"):
                problems.append(f"{where}: only the gateway may see the API-key pepper")
    return problems


def address_problems(docs: list[Doc]) -> list[str]:
    """Each service address in the ConfigMap names a Service whose pods serve that package."""
    problems = []
    deployments = of_kind(docs, "Deployment")
    services = of_kind(docs, "Service")
    for name, config in of_kind(docs, "ConfigMap").items():
        for key, (package, subcommand) in ADDRESS_SETTINGS.items():
            value = str(config.get("data", {}).get(key, ""))
            host, _, port = value.rpartition(":")
            service = services.get(host)
            if service is None or not port.isdigit():
                problems.append(f"ConfigMap {name}: {key}={value!r} names no Service")
                continue
            if int(port) not in [p["port"] for p in service["spec"]["ports"]]:
                problems.append(f"ConfigMap {name}: Service {host} has no port {port}")
            selector = service["spec"].get("selector", {})
            runs = {
                command_of(c)
                for d in deployments.values()
                if selects(selector, template_labels(d))
                for c in containers(d, init=False)
            }
            if (package, subcommand) not in runs:
                problems.append(f"ConfigMap {name}: {key} -> {host}, which does not run {package}")
    return problems


def external_server_problems(docs: list[Doc]) -> list[str]:
    """PostgreSQL, Redis and RabbitMQ are outside: named by cluster DNS, with the right scheme."""
    problems = []
    values: dict[str, str] = {}
    for doc in docs:
        if doc.get("kind") in ("ConfigMap", "Secret"):
            values.update({k: str(v) for k, v in (doc.get("data") or {}).items()})
            values.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    for key, schemes in EXTERNAL_URLS.items():
        if key not in values:
            problems.append(f"{key} is set nowhere")
            continue
        url = urlsplit(values[key])
        host = url.hostname or ""
        if url.scheme not in schemes:
            problems.append(f"{key}: scheme {url.scheme!r} is not one of {sorted(schemes)}")
        if not (host.endswith(".svc") or host.endswith(".svc.cluster.local")):
            problems.append(f"{key}: {host!r} is not a service DNS name")
    return problems


def secret_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for name, secret in of_kind(docs, "Secret").items():
        if secret.get("data"):
            problems.append(f"Secret {name}: use stringData placeholders, not encoded data")
        for key, value in (secret.get("stringData") or {}).items():
            if PLACEHOLDER not in str(value):
                problems.append(
                    f"Secret {name}: {key} holds a value, not a {PLACEHOLDER} placeholder"
                )
    return problems


def scaling_problems(docs: list[Doc]) -> list[str]:
    problems = []
    deployments = of_kind(docs, "Deployment")
    authentications = of_kind(docs, "TriggerAuthentication")
    secrets = {
        n: {*d.get("data", {}), *d.get("stringData", {})}
        for n, d in of_kind(docs, "Secret").items()
    }
    scaled = of_kind(docs, "ScaledObject")
    runners = [
        n
        for n, d in deployments.items()
        if ("agentloom_executor", "runner") in {command_of(c) for c in containers(d, init=False)}
    ]
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()}
    if runners != sorted(targets):
        problems.append(f"runner Deployments {runners} vs KEDA targets {sorted(targets)}")
    for name, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        target = deployments.get(spec["scaleTargetRef"]["name"])
        if target is None:
            problems.append(f"ScaledObject {name}: no Deployment {spec['scaleTargetRef']['name']}")
        elif "replicas" in target["spec"]:
            problems.append(f"ScaledObject {name}: its Deployment sets replicas, fighting the HPA")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problems.append(f"ScaledObject {name}: minReplicaCount > maxReplicaCount")
        for trigger in spec["triggers"]:
            if trigger["type"] != "rabbitmq" or trigger["metadata"].get("queueName") != JOBS_QUEUE:
                problems.append(f"ScaledObject {name}: must scale on RabbitMQ queue {JOBS_QUEUE}")
            if trigger["metadata"].get("mode") != "QueueLength":
                problems.append(f"ScaledObject {name}: must scale on queue length")
            auth = authentications.get((trigger.get("authenticationRef") or {}).get("name", ""))
            if auth is None:
                problems.append(f"ScaledObject {name}: its TriggerAuthentication is missing")
                continue
            parameters = set()
            for ref in auth["spec"].get("secretTargetRef", []):
                parameters.add(ref["parameter"])
                if ref["key"] not in secrets.get(ref["name"], set()):
                    problems.append(f"TriggerAuthentication: {ref['name']}/{ref['key']} missing")
            if "host" not in parameters and "host" not in trigger["metadata"]:
                problems.append(f"ScaledObject {name}: no broker host for the scaler")
    return problems


# ---- the real manifests -------------------------------------------------------------------------


def test_every_document_is_a_known_kind_with_a_name(docs: list[Doc]) -> None:
    assert kind_problems(docs) == []


def test_kustomization_lists_every_manifest_and_only_existing_ones(
    documents: list[tuple[Path, Doc]],
) -> None:
    assert kustomization_problems(documents) == []


def test_builtin_objects_match_the_kubernetes_schemas(docs: list[Doc]) -> None:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate is not installed (root dev dependency group)")
    import kubernetes_validate

    builtin = [d for d in docs if d["apiVersion"] in BUILTIN_API_VERSIONS]
    assert builtin
    problems = []
    for version in (K8S_MIN_VERSION, kubernetes_validate.latest_version()):
        for doc in builtin:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = "/".join(map(str, error.path))
                problems.append(
                    f"{version} {doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}"
                )
    assert problems == []


def test_keda_and_kustomize_objects_use_documented_fields(docs: list[Doc]) -> None:
    assert custom_schema_problems(docs) == []


def test_every_container_has_requests_and_limits(docs: list[Doc]) -> None:
    assert resource_problems(docs) == []


def test_every_pod_is_non_root_read_only_and_unprivileged(docs: list[Doc]) -> None:
    assert security_problems(docs) == []


def test_servers_are_probed_on_their_own_ports(docs: list[Doc]) -> None:
    assert probe_problems(docs) == []


def test_labels_selectors_services_and_budgets_line_up(docs: list[Doc]) -> None:
    assert selector_problems(docs) == []


def test_containers_run_existing_packages_after_migrating(
    docs: list[Doc],
    service_packages: dict[str, Path],
    subcommands: dict[str, frozenset[str]],
    schema_owners: frozenset[str],
) -> None:
    assert command_problems(docs, service_packages, subcommands, schema_owners) == []


def test_every_service_package_is_deployed(
    docs: list[Doc], service_packages: dict[str, Path], subcommands: dict[str, frozenset[str]]
) -> None:
    running = {
        command_of(c)
        for d in of_kind(docs, "Deployment").values()
        for c in containers(d, init=False)
    }
    for package in service_packages:
        servers = subcommands.get(package, frozenset({"serve", "migrate"})) - {"migrate"}
        assert {(package, sub) for sub in servers} <= running, package


def test_environment_uses_known_settings_from_existing_keys(
    docs: list[Doc], settings_env: frozenset[str]
) -> None:
    assert environment_problems(docs, settings_env) == []


def test_service_addresses_reach_the_right_pods(docs: list[Doc]) -> None:
    assert address_problems(docs) == []


def test_external_servers_are_named_by_service_dns(docs: list[Doc]) -> None:
    assert external_server_problems(docs) == []


def test_secret_is_a_template_of_placeholders(docs: list[Doc]) -> None:
    assert of_kind(docs, "Secret"), "a Secret template is expected"
    assert secret_problems(docs) == []


def test_runners_scale_on_the_jobs_queue(docs: list[Doc]) -> None:
    assert of_kind(docs, "ScaledObject"), "a KEDA ScaledObject is expected"
    assert scaling_problems(docs) == []


def test_namespace_enforces_the_restricted_pod_security_standard(docs: list[Doc]) -> None:
    namespaces = of_kind(docs, "Namespace")
    assert namespaces
    for namespace in namespaces.values():
        labels = namespace["metadata"].get("labels", {})
        assert labels.get("pod-security.kubernetes.io/enforce") == "restricted"


# ---- the checks can fail ----------------------------------------------------------------------

Mutation = Callable[[list[Doc]], None]


def _find(docs: list[Doc], kind: str, name: str) -> Doc:
    return next(d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name)


def _edit(kind: str, name: str, change: Callable[[Doc], None]) -> Mutation:
    return lambda docs: change(_find(docs, kind, name))


def _server(deployment: Doc) -> Doc:
    return next(containers(deployment, init=False))


BROKEN: dict[str, tuple[Mutation, str]] = {
    "unknown kind": (
        lambda docs: docs.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}),
        "kind",
    ),
    "duplicate object": (
        lambda docs: docs.append(copy.deepcopy(_find(docs, "Service", "graphs"))),
        "kind",
    ),
    "unknown KEDA field": (
        _edit("ScaledObject", "executor-runner", lambda d: d["spec"].update(maxReplicas=3)),
        "custom",
    ),
    "no memory limit": (
        _edit("Deployment", "graphs", lambda d: _server(d)["resources"]["limits"].pop("memory")),
        "resources",
    ),
    "writable root fs": (
        _edit(
            "Deployment",
            "billing",
            lambda d: _server(d)["securityContext"].update(readOnlyRootFilesystem=False),
        ),
        "security",
    ),
    "escalation allowed in init container": (
        _edit(
            "Deployment",
            "graphs",
            lambda d: pod_spec(d)["initContainers"][0]["securityContext"].update(
                allowPrivilegeEscalation=True
            ),
        ),
        "security",
    ),
    "root allowed": (
        _edit(
            "Deployment",
            "notify",
            lambda d: pod_spec(d)["securityContext"].update(runAsNonRoot=False),
        ),
        "security",
    ),
    "no readiness probe": (
        _edit("Deployment", "blocks", lambda d: _server(d).pop("readinessProbe")),
        "probe",
    ),
    "http probe on a gRPC server": (
        _edit(
            "Deployment",
            "graphs",
            lambda d: _server(d).update(livenessProbe={"httpGet": {"path": "/", "port": 50051}}),
        ),
        "probe",
    ),
    "gRPC probe on the wrong port": (
        _edit(
            "Deployment",
            "billing",
            lambda d: _server(d).update(livenessProbe={"grpc": {"port": 50051}}),
        ),
        "probe",
    ),
    "selector misses pods": (
        _edit(
            "Deployment",
            "notify",
            lambda d: d["spec"]["selector"]["matchLabels"].update(app="notifier"),
        ),
        "selector",
    ),
    "Service selects nothing": (
        _edit("Service", "executor", lambda d: d["spec"]["selector"].update(app="executor")),
        "selector",
    ),
    "Service targets an undeclared port": (
        _edit("Service", "gateway", lambda d: d["spec"]["ports"][0].update(targetPort="web")),
        "selector",
    ),
    "no disruption budget": (
        lambda docs: docs.remove(_find(docs, "PodDisruptionBudget", "gateway")),
        "selector",
    ),
    "unknown package": (
        _edit(
            "Deployment",
            "graphs",
            lambda d: _server(d).update(command=["python", "-m", "agentloom_graph"]),
        ),
        "command",
    ),
    "serves before migrating": (
        _edit("Deployment", "billing", lambda d: pod_spec(d).pop("initContainers")),
        "command",
    ),
    "misspelt setting": (
        _edit(
            "Deployment",
            "graphs",
            lambda d: _server(d)["env"].append({"name": "AGENTLOOM_LISTEN", "value": "x"}),
        ),
        "environment",
    ),
    "missing secret key": (
        _edit(
            "Secret", "agentloom-secrets", lambda d: d["stringData"].pop("AGENTLOOM_DATABASE_URL")
        ),
        "environment",
    ),
    "pepper in plain text": (
        _edit(
            "Deployment",
            "notify",
            lambda d: _server(d)["env"].append({"name": "AGENTLOOM_API_KEY_PEPPER", "value": "x"}),
        ),
        "environment",
    ),
    "address to a Service that is not there": (
        _edit(
            "ConfigMap",
            "agentloom-config",
            lambda d: d["data"].update(AGENTLOOM_GRAPHS_ADDR="graph:50051"),
        ),
        "address",
    ),
    "address to the wrong service": (
        _edit(
            "ConfigMap",
            "agentloom-config",
            lambda d: d["data"].update(AGENTLOOM_BILLING_ADDR="blocks:50052"),
        ),
        "address",
    ),
    "redis on localhost": (
        _edit(
            "ConfigMap",
            "agentloom-config",
            lambda d: d["data"].update(AGENTLOOM_REDIS_URL="redis://127.0.0.1:6379/0"),
        ),
        "external",
    ),
    "real secret committed": (
        _edit(
            "Secret",
            "agentloom-secrets",
            lambda d: d["stringData"].update(OPENAI_API_KEY="sk-live"),
        ),
        "secret",
    ),
    "scales on another queue": (
        _edit(
            "ScaledObject",
            "executor-runner",
            lambda d: d["spec"]["triggers"][0]["metadata"].update(queueName="jobs"),
        ),
        "scaling",
    ),
    "runner replicas fight the autoscaler": (
        _edit("Deployment", "executor-runner", lambda d: d["spec"].update(replicas=2)),
        "scaling",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_checks_reject_broken_manifests(
    case: str,
    docs: list[Doc],
    service_packages: dict[str, Path],
    subcommands: dict[str, frozenset[str]],
    schema_owners: frozenset[str],
    settings_env: frozenset[str],
) -> None:
    mutate, check = BROKEN[case]
    broken = copy.deepcopy(docs)
    mutate(broken)
    checks: dict[str, Callable[[list[Doc]], list[str]]] = {
        "kind": kind_problems,
        "custom": custom_schema_problems,
        "resources": resource_problems,
        "security": security_problems,
        "probe": probe_problems,
        "selector": selector_problems,
        "command": lambda d: command_problems(d, service_packages, subcommands, schema_owners),
        "environment": lambda d: environment_problems(d, settings_env),
        "address": address_problems,
        "external": external_server_problems,
        "secret": secret_problems,
        "scaling": scaling_problems,
    }
    assert checks[check](broken) != []


def test_kustomization_check_rejects_missing_and_unlisted_files(
    documents: list[tuple[Path, Doc]],
) -> None:
    broken = copy.deepcopy(documents)
    kustomization = next(d for _, d in broken if d["kind"] == "Kustomization")
    kustomization["resources"] = [*kustomization["resources"][1:], "nowhere.yaml"]
    problems = kustomization_problems(broken)
    assert any("nowhere.yaml does not exist" in p for p in problems)
    assert any("is not listed" in p for p in problems)


def test_kubernetes_schema_check_rejects_a_bad_field() -> None:
    if importlib.util.find_spec("kubernetes_validate") is None:
        pytest.skip("kubernetes-validate is not installed (root dev dependency group)")
    import kubernetes_validate

    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "grpc"}], "selectr": {"app": "x"}},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, K8S_MIN_VERSION, strict=True)

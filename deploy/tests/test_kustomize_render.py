"""Every kustomization under deploy/k8s rendered with `kubectl kustomize` (or `kustomize build`), and the rendered
objects checked: edge routing and the network policies that allow it, a PodDisruptionBudget, a preStop delay and
resources for every service, and Prometheus scraping.

The rendered objects are what a cluster gets (the overlay's patches, replicas and namespace applied), so these
checks hold for the output, not only for the files. Without kubectl or kustomize the tests fail: the
manifests are part of the product.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
import yaml
from prometheus_client import CollectorRegistry

from chat_app.settings_reference import SERVICE_SETTINGS
from chat_auth.entrypoints import bus as auth_bus
from chat_gateway.entrypoints import bus as gateway_bus
from chat_messages.entrypoints import bus as messages_bus
from chat_rooms.entrypoints import bus as rooms_bus
from chat_runtime.health import health_router
from chat_runtime.module import BusHandler

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
SERVICEMONITOR = K8S / "components" / "servicemonitor"
OPERATIONS = REPO / "docs" / "operations.md"
SERVICES = tuple(cls.SERVICE for cls in SERVICE_SETTINGS)
API_SERVICES = ("auth", "rooms", "messages")
INGRESS_NAMESPACE = {"kubernetes.io/metadata.name": "ingress-nginx"}
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
PORT = 8000
LONGEST_REQUEST_SECONDS = 30
"""CHAT_GATEWAY_PROXY_TIMEOUT_SECONDS's default: the longest a request waits on a service."""

Yaml = dict[str, Any]


def _renderer() -> list[str]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    assert kustomize, "neither kubectl nor kustomize is installed: install one to check deploy/k8s"
    return [kustomize, "build"]


@cache
def _render(directory: Path) -> tuple[Yaml, ...]:
    rendered = subprocess.run([*_renderer(), str(directory)], capture_output=True, text=True, check=False, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    return tuple(doc for doc in yaml.safe_load_all(rendered.stdout) if doc)


def _objects(docs: tuple[Yaml, ...], kind: str) -> dict[str, Yaml]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def _pod_labels(deployment: Yaml) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: Yaml, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and In/NotIn/Exists expressions) against a set of labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _allowed(
    docs: tuple[Yaml, ...], pod: dict[str, str], *, namespace: dict[str, str] | None, peer: Yaml, port: int = PORT
) -> bool:
    """Whether a NetworkPolicy lets a peer (pods with ``peer`` labels in the same namespace, or any pod of a
    namespace with ``namespace`` labels) reach ``port`` of a pod with labels ``pod``."""
    for policy in _objects(docs, "NetworkPolicy").values():
        if not _selects(policy["spec"]["podSelector"], pod):
            continue
        for rule in policy["spec"].get("ingress", []):
            ports = {allowed["port"] for allowed in rule.get("ports", [{"port": port}])}
            if port not in ports:
                continue
            for source in rule.get("from", []):
                by_namespace = "namespaceSelector" in source and "podSelector" not in source
                by_pod = "podSelector" in source and "namespaceSelector" not in source
                if namespace is not None and by_namespace and _selects(source["namespaceSelector"], namespace):
                    return True
                if namespace is None and by_pod and _selects(source["podSelector"], peer):
                    return True
    return False


RENDERED = [K8S / "base", *OVERLAYS]
IDS = [str(path.relative_to(K8S)) for path in RENDERED]


def test_there_is_an_overlay_to_render() -> None:
    assert OVERLAYS, "deploy/k8s/overlays/* holds the example overlays"


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_it_renders_a_deployment_service_and_disruption_budget_per_service(directory: Path) -> None:
    docs = _render(directory)
    deployments = _objects(docs, "Deployment")
    assert sorted(deployments) == sorted(SERVICES)
    assert sorted(_objects(docs, "Service")) == sorted(SERVICES)
    budgets = _objects(docs, "PodDisruptionBudget").values()
    for name, deployment in deployments.items():
        (budget,) = [pdb for pdb in budgets if _selects(pdb["spec"]["selector"], _pod_labels(deployment))]
        spec = budget["spec"]
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] == 1, name
        else:
            assert spec["minAvailable"] == 1, name
        replicas = deployment["spec"].get("replicas")
        if replicas is None:  # the HPA's
            (hpa,) = [
                h
                for h in _objects(docs, "HorizontalPodAutoscaler").values()
                if h["spec"]["scaleTargetRef"]["name"] == name
            ]
            replicas = hpa["spec"]["minReplicas"]
        assert replicas >= 2, f"{name}: one replica and a budget would block every drain"


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_every_pod_drains_before_it_stops(directory: Path) -> None:
    for name, deployment in _objects(_render(directory), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep", name
        delay = int(command[1])
        assert 3 <= delay <= 10, f"{name}: long enough for the endpoint removal to spread, short enough to roll"
        assert pod["terminationGracePeriodSeconds"] >= delay + LONGEST_REQUEST_SECONDS, name
        strategy = deployment["spec"]["strategy"]["rollingUpdate"]
        assert strategy["maxUnavailable"] == 0, name


def _group_members() -> set[str]:
    """The services with a consumer-group member, from their bus entrypoints (the handlers only keep what they are
    given, so stand-ins do); a broadcast reader assigns itself partitions and joins no group."""
    handlers: dict[str, Sequence[BusHandler]] = {
        "auth": auth_bus.bus_handlers(),
        "rooms": rooms_bus.bus_handlers(Mock()),
        "messages": messages_bus.bus_handlers(Mock(), Mock(), instance_id="pod"),
        "gateway": gateway_bus.bus_handlers(Mock(), "pod"),
    }
    assert sorted(handlers) == sorted(SERVICES)
    return {service for service, found in handlers.items() if any(not handler.broadcast for handler in found)}


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_every_consumer_group_member_is_a_static_member_named_after_its_pod(directory: Path) -> None:
    docs = _render(directory)
    members = _group_members()
    assert members, "the messages and rooms services consume through groups"
    deployments = _objects(docs, "Deployment")
    for name in members:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item for item in container.get("env", [])}
        assert env.get("CHAT_KAFKA_GROUP_INSTANCE_ID") == {
            "name": "CHAT_KAFKA_GROUP_INSTANCE_ID",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        }, f"{name}: a name unique per pod, kept across a container restart"
    for config in _objects(docs, "ConfigMap").values():
        assert "CHAT_KAFKA_GROUP_INSTANCE_ID" not in config.get("data", {}), "one value shared by every pod"


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_every_consumer_group_member_gives_its_peers_an_address_they_may_reach(directory: Path) -> None:
    docs = _render(directory)
    deployments = _objects(docs, "Deployment")
    for name in _group_members():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        env = [item["name"] for item in container.get("env", [])]
        values = {item["name"]: item for item in container.get("env", [])}
        assert values.get("POD_IP") == {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        assert values.get("CHAT_KAFKA_PEER_ADDRESS") == {"name": "CHAT_KAFKA_PEER_ADDRESS", "value": "$(POD_IP):9095"}
        assert env.index("POD_IP") < env.index("CHAT_KAFKA_PEER_ADDRESS"), "Kubernetes expands only earlier variables"
        assert {"name": "peer", "containerPort": 9095} in container["ports"], name
        if directory in OVERLAYS and _objects(docs, "NetworkPolicy"):
            pod = _pod_labels(deployments[name])
            assert _allowed(docs, pod, namespace=None, peer=pod, port=9095), f"{name} -> {name} peer port"
            others = _pod_labels(deployments["gateway"])
            assert not _allowed(docs, pod, namespace=None, peer=others, port=9095), f"gateway -> {name} peer port"


def _sizing_table() -> dict[str, tuple[str, str, str]]:
    """docs/operations.md's Sizing table: service -> (CPU request, memory request, memory limit)."""
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("#### Sizing") :]
    rows = re.findall(r"^\| (\w+) \| (\w+) \| (\w+) / (\w+) \| .+\|$", section, re.MULTILINE)
    return {service: (cpu, memory, limit) for service, cpu, memory, limit in rows}


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_resources_are_the_ones_docs_operations_md_derives_from_the_benchmarks(directory: Path) -> None:
    table = _sizing_table()
    assert sorted(table) == sorted(SERVICES)
    for name, deployment in _objects(_render(directory), "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        resources = container["resources"]
        actual = (resources["requests"]["cpu"], resources["requests"]["memory"], resources["limits"]["memory"])
        assert actual == table[name], name
        assert "cpu" not in resources["limits"], f"{name}: no CPU limit (throttling adds latency)"


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_every_pod_is_scraped_on_the_path_that_serves_metrics(directory: Path) -> None:
    served = {getattr(route, "path", None) for route in health_router({}, CollectorRegistry()).routes}
    for name, deployment in _objects(_render(directory), "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] in served, name
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert int(annotations["prometheus.io/port"]) in {port["containerPort"] for port in container["ports"]}


@pytest.mark.parametrize("directory", RENDERED, ids=IDS)
def test_every_rendered_image_is_pinned_and_the_migrate_phase_is_complete(directory: Path) -> None:
    docs = _render(directory)
    workloads = [doc for doc in docs if doc["kind"] in ("Deployment", "Job")]
    images = [
        container["image"]
        for workload in workloads
        for key in ("initContainers", "containers")
        for container in workload["spec"]["template"]["spec"].get(key, [])
    ]
    assert len(images) == 6
    assert [image for image in images if not re.fullmatch(r"[^:@]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image)] == []
    assert [image for image in images if image.endswith(":latest")] == []
    # `kubectl apply -k … -l deploy-phase=migrate` must bring everything the Job needs (Secrets come separately).
    first_phase = {doc["kind"] for doc in docs if doc["metadata"].get("labels", {}).get("deploy-phase") == "migrate"}
    assert first_phase == {"ConfigMap", "ServiceAccount", "Job"}
    # Safe under GitOps re-syncs: run before each sync and replaced, never patched (a Job's spec is immutable).
    (job,) = [doc for doc in docs if doc["kind"] == "Job"]
    assert job["metadata"]["annotations"] == {
        "argocd.argoproj.io/hook": "PreSync",
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        "kustomize.toolkit.fluxcd.io/force": "enabled",
    }


EVERY_ADDRESS = {"0.0.0.0/0", "::/0"}
DENYLIST = "nginx.ingress.kubernetes.io/denylist-source-range"


def _refuses_everyone(ingress: Yaml) -> bool:
    """An Ingress whose paths the controller refuses to every client address (403): not routes, walls."""
    denied = ingress["metadata"].get("annotations", {}).get(DENYLIST, "")
    return {cidr.strip() for cidr in denied.split(",")} >= EVERY_ADDRESS


def _routes(docs: tuple[Yaml, ...]) -> dict[str, str]:
    """Every Ingress path clients may use and the Service it goes to."""
    routes: dict[str, str] = {}
    for ingress in _objects(docs, "Ingress").values():
        if _refuses_everyone(ingress):
            continue
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["pathType"] == "Prefix", path
                assert path["path"] not in routes, f"{path['path']} twice"
                routes[path["path"]] = path["backend"]["service"]["name"]
    return routes


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_the_edge_sends_each_api_prefix_to_its_service_and_the_rest_to_the_gateways(overlay: Path) -> None:
    docs = _render(overlay)
    routes = _routes(docs)
    assert routes == {
        "/api/auth": "auth",
        "/api/rooms": "rooms",
        "/api/messages": "messages",
        "/socket.io": "gateway",
        "/": "gateway",
    }
    services = _objects(docs, "Service")
    for ingress in _objects(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}


def _prefix_matches(prefix: str, path: str) -> bool:
    """Kubernetes ``Prefix`` matching: whole path elements, so /metrics matches /metrics/x but not /metricsx."""
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _answering(docs: tuple[Yaml, ...], host: str, path: str) -> Yaml | None:
    """The Ingress whose path answers ``path`` on ``host``: the longest matching prefix among every Ingress of the
    host (the controller merges them)."""
    best: tuple[int, Yaml] | None = None
    for ingress in _objects(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for route in rule["http"]["paths"]:
                prefix = route["path"]
                if _prefix_matches(prefix, path) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), ingress)
    return best[1] if best else None


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_no_public_host_serves_the_metrics_prometheus_scrapes(overlay: Path) -> None:
    docs = _render(overlay)
    scraped = {
        deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]
        for deployment in _objects(docs, "Deployment").values()
    }
    assert scraped == {"/metrics"}
    hosts = {rule.get("host") for ingress in _objects(docs, "Ingress").values() for rule in ingress["spec"]["rules"]}
    assert hosts
    for host in hosts:
        for path in (*scraped, *(f"{p}/" for p in scraped), *(f"{p}/anything" for p in scraped)):
            answering = _answering(docs, host, path)
            assert answering is not None, f"{host}{path} is not routed at all, so no wall stands in front of it"
            assert _refuses_everyone(answering), f"{host}{path} reaches {answering['metadata']['name']}"
        # The wall is narrow: the web client and the gateway's sockets stay public.
        for public in ("/", "/metricsfoo", "/socket.io/", "/assets/index.js"):
            answering = _answering(docs, host, public)
            assert answering is not None, public
            assert not _refuses_everyone(answering), public


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[path.name for path in OVERLAYS])
def test_the_network_policies_let_the_ingress_controller_and_prometheus_reach_every_service(overlay: Path) -> None:
    docs = _render(overlay)
    deployments = _objects(docs, "Deployment")
    gateway = _pod_labels(deployments["gateway"])
    for name in set(_routes(docs).values()):
        pod = _pod_labels(deployments[name])
        assert _allowed(docs, pod, namespace=INGRESS_NAMESPACE, peer={}), f"ingress controller -> {name}"
    for name, deployment in deployments.items():
        pod = _pod_labels(deployment)
        assert _allowed(docs, pod, namespace=MONITORING_NAMESPACE, peer={}), f"Prometheus -> {name}"
        if name in API_SERVICES:
            assert _allowed(docs, pod, namespace=None, peer=gateway), f"gateway -> {name}"
    assert not _allowed(docs, gateway, namespace={"kubernetes.io/metadata.name": "default"}, peer={})


def test_the_servicemonitor_component_scrapes_every_service(tmp_path: Path) -> None:
    """Rendered into the production overlay the way an overlay would add it (`components:`)."""
    (production,) = [path for path in OVERLAYS if path.name == "production"]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(production, tmp_path)],
                "components": [os.path.relpath(SERVICEMONITOR, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    docs = _render(tmp_path)
    (monitor,) = _objects(docs, "ServiceMonitor").values()
    for name, service in _objects(docs, "Service").items():
        assert _selects(monitor["spec"]["selector"], service["metadata"]["labels"]), name
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True, "the metrics' own service label must win"

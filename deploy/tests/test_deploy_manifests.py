"""Offline checks of the deployment files: the Dockerfile, docker compose, nginx and the Kubernetes manifests.

Nothing here needs a Docker engine or a cluster. The files are parsed and checked against each other and against
the settings classes, so a renamed setting, a missing build target or a probe on the wrong path fails `make test`
instead of a deployment. The rendered Kubernetes objects are checked in test_kustomize_render.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from chat_app.settings_reference import SERVICE_SETTINGS, own_fields, service_prefix
from chat_runtime.settings import SHARED_PREFIX, ChatSettings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
K8S = REPO / "deploy" / "k8s"
K8S_BASE = K8S / "base"
K8S_OVERLAY = K8S / "overlays" / "production"
NGINX_CONF = COMPOSE_DIR / "nginx" / "chat.conf"

SERVICES = tuple(cls.SERVICE for cls in SERVICE_SETTINGS)
"""auth, rooms, messages, gateway: the `chat serve --target` values and the Dockerfile's service targets."""

Yaml = dict[str, Any]


# --- settings: which CHAT_ variables exist ---------------------------------------------------------------------------


def _variables(service: str | None) -> set[str]:
    """The CHAT_ variables a process running ``service`` reads (every service's for ``None``: `chat migrate`).

    Shared fields only as CHAT_<FIELD>: the launcher reads the bus, HTTP and Kafka settings through the shared
    class, so a service-prefixed CHAT_<SERVICE>_HTTP_PORT would be silently ignored there.
    """
    names = {f"{SHARED_PREFIX}{name.upper()}" for name in ChatSettings.model_fields}
    for cls in SERVICE_SETTINGS:
        if service is None or service == cls.SERVICE:
            names |= {f"{service_prefix(cls)}{name.upper()}" for name in own_fields(cls)}
    return names


def _secret_variables() -> set[str]:
    """Variables holding secrets: SecretStr fields, and database URLs (they carry passwords)."""
    names = set()
    for cls in SERVICE_SETTINGS:
        for name, info in own_fields(cls).items():
            if SecretStr in _annotation_parts(info.annotation) or name.endswith(("database_url", "mongo_url")):
                names.add(f"{service_prefix(cls)}{name.upper()}")
    return names


def _annotation_parts(annotation: Any) -> set[Any]:
    parts = {annotation}
    for arg in getattr(annotation, "__args__", ()):
        parts |= _annotation_parts(arg)
    return parts


REQUIRED_SECRETS = {
    f"{service_prefix(cls)}{name.upper()}": cls.SERVICE for cls in SERVICE_SETTINGS for name in cls.GENERATED_SECRETS
}


def _unknown(variables: set[str], service: str | None) -> list[str]:
    return sorted(name for name in variables if name.startswith(SHARED_PREFIX) and name not in _variables(service))


def test_the_settings_classes_are_the_four_services() -> None:
    assert SERVICES == ("auth", "rooms", "messages", "gateway")
    assert REQUIRED_SECRETS, "the auth service's secrets are required outside dev mode"


# --- every YAML file parses ------------------------------------------------------------------------------------------


def _yaml_files() -> list[Path]:
    return sorted(path for base in (COMPOSE_DIR, K8S) for path in base.rglob("*") if path.suffix in (".yml", ".yaml"))


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda path: str(path.relative_to(REPO)))
def test_every_yaml_file_parses(path: Path) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    assert documents, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in documents)


# --- Dockerfile ------------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _dockerfile_stages() -> dict[str, Stage]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(?:--\S+\s+)*(\S+)\s+AS\s+(\S+)", args.strip(), re.IGNORECASE)
            assert match, f"every stage is named: FROM {args}"
            current = Stage(name=match[2], base=match[1])
            stages[current.name] = current
        elif current is not None:
            current.instructions.append((keyword, args.strip()))
    return stages


def _inherited(stages: dict[str, Stage], name: str) -> Iterator[Stage]:
    """The stage and the stages it is built FROM, nearest first."""
    while name in stages:
        yield stages[name]
        name = stages[name].base


def _external_images(stages: dict[str, Stage]) -> list[str]:
    images = [stage.base for stage in stages.values() if stage.base not in stages]
    for stage in stages.values():
        for args in stage.all("COPY"):
            match = re.search(r"--from=(\S+)", args)
            if match and match[1] not in stages:
                images.append(match[1])
    return images


def _pinned(image: str) -> bool:
    """A tag (not `latest`) or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag not in ("", "latest")


def test_the_dockerfile_has_a_target_per_service_and_one_for_the_one_shot_commands() -> None:
    stages = _dockerfile_stages()
    for service in SERVICES:
        assert service in stages, f"build target {service} is missing"
        assert [json.loads(cmd) for cmd in stages[service].all("CMD")] == [["serve", "--target", service]]
    assert "tools" in stages
    entrypoints = [json.loads(ep) for stage in _inherited(stages, "auth") for ep in stage.all("ENTRYPOINT")]
    assert entrypoints[0] == ["chat"]


def test_every_image_the_dockerfile_uses_is_pinned_by_tag() -> None:
    images = _external_images(_dockerfile_stages())
    assert images
    assert [image for image in images if not _pinned(image)] == []


def test_the_uv_image_is_the_version_the_makefile_pins() -> None:
    pinned = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(encoding="utf-8"), re.MULTILINE)
    assert pinned
    assert f"ghcr.io/astral-sh/uv:{pinned[1]}" in _external_images(_dockerfile_stages())


def test_each_image_gets_its_own_environment_from_the_lock_without_dev_tools() -> None:
    stages = _dockerfile_stages()
    for image, extra in (*((service, service) for service in SERVICES), ("tools", "all")):
        copies = [args for stage in _inherited(stages, image) for args in stage.all("COPY") if "/app/.venv" in args]
        assert copies == [f"--from=env-{extra} /app/.venv /app/.venv"], f"{image}: {copies}"
        syncs = [args for args in stages[f"env-{extra}"].all("RUN") if "uv sync" in args]
        assert syncs
        for args in syncs:
            for flag in ("--locked", "--no-dev", "--package chat-app", f"--extra {extra}"):
                assert flag in args, f"{flag} missing from: {args}"
            assert "embedded" not in args, "chat-localinfra (chat up's servers) is for development only"
        assert "--no-editable" in syncs[-1], "the runtime image must not need the source tree"


def test_every_path_the_dockerfile_copies_from_the_context_exists() -> None:
    for stage in _dockerfile_stages().values():
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            sources = [part for part in args.split() if not part.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source} (stage {stage.name}): no such path"


def test_the_service_images_run_as_a_non_root_user_with_a_healthcheck_on_healthz() -> None:
    stages = _dockerfile_stages()
    for service in SERVICES:
        chain = list(_inherited(stages, service))
        users = [user for stage in chain for user in stage.all("USER")]
        assert users, f"{service}: no USER"
        assert users[0].split(":")[0] not in ("0", "root")
        checks = [check for stage in chain for check in stage.all("HEALTHCHECK")]
        assert checks, f"{service}: no HEALTHCHECK"
        command = json.loads(checks[0].split(" CMD ", 1)[1])
        assert command == ["python", "/app/healthcheck.py"], command
    probe = (DOCKER / "healthcheck.py").read_text(encoding="utf-8")
    assert 'else "/healthz"' in probe, "the HEALTHCHECK's default path is /healthz"


def test_the_gateway_image_carries_the_web_client_and_points_the_gateway_at_it() -> None:
    gateway = _dockerfile_stages()["gateway"]
    copies = [args for args in gateway.all("COPY") if "--from=web" in args]
    assert copies
    target = copies[0].split()[-1]
    assert f"CHAT_GATEWAY_WEB_DIR={target}" in " ".join(gateway.all("ENV"))
    assert "npm ci" in " ".join(_dockerfile_stages()["web"].all("RUN"))


def test_the_dockerfile_sets_only_known_settings_and_no_secrets() -> None:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(CHAT_[A-Z0-9_]+)=", text))
    assert _unknown(named, None) == []
    assert named & _secret_variables() == set()
    assert not re.search(r"^\s*ARG\s+\S*(SECRET|PASSWORD|PEPPER|TOKEN)", text, re.MULTILINE | re.IGNORECASE)


def test_the_dockerignore_is_an_allow_list_that_keeps_local_state_and_secrets_out() -> None:
    lines = [
        line.strip()
        for line in (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    for kept_out in ("**/.env", "**/.env.*", "**/node_modules/", "**/tests/"):
        assert kept_out in lines
    assert not any(line.startswith("!") and (".data" in line or ".infra" in line or ".venv" in line) for line in lines)


# --- docker compose --------------------------------------------------------------------------------------------------


def _compose() -> Yaml:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _compose_services() -> dict[str, Yaml]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _build_target(service: Yaml) -> str | None:
    build = service.get("build")
    return str(build["target"]) if isinstance(build, dict) and "target" in build else None


def _chat_service(service: Yaml) -> str | None:
    """Which `chat` service a compose service runs (None for one-shot `tools` and for the infrastructure)."""
    target = _build_target(service)
    return target if target in SERVICES else None


def _interpolate_defaults(value: str) -> str:
    """What compose makes of ``${VAR:-default}`` (the default) and ``${VAR:?error}`` (a placeholder)."""
    value = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{([A-Z0-9_]+)(?::\?[^}]*)?\}", r"<\1>", value)


def _one_shot(service: Yaml) -> bool:
    return service.get("restart") == "no"


def test_compose_build_targets_exist_in_the_dockerfile() -> None:
    stages = _dockerfile_stages()
    for name, service in _compose_services().items():
        build = service.get("build")
        if build is None:
            continue
        assert build["dockerfile"] == "deploy/docker/Dockerfile"
        assert (COMPOSE_DIR / build["context"]).resolve() == REPO
        assert _build_target(service) in stages, f"{name}: no stage {_build_target(service)!r}"


def test_compose_runs_each_service_once_and_two_gateways() -> None:
    targets = [_build_target(service) for service in _compose_services().values()]
    for service in ("auth", "rooms", "messages"):
        assert targets.count(service) == 1
    assert targets.count("gateway") == 2


def test_no_gateway_has_a_fixed_instance_id() -> None:
    """The default is random per process start; a value set in a shared place would give every gateway the same
    name in presence reports."""
    for name, service in _compose_services().items():
        assert "CHAT_GATEWAY_INSTANCE_ID" not in service.get("environment", {}), name
    (container,) = _pod_spec(_base_objects("Deployment")["gateway"])["containers"]
    assert "CHAT_GATEWAY_INSTANCE_ID" not in {item["name"] for item in container.get("env", [])}
    assert "CHAT_GATEWAY_INSTANCE_ID" not in _env_file(K8S_BASE / "config.env")


def test_every_compose_image_is_pinned_by_tag() -> None:
    for name, service in _compose_services().items():
        assert "image" in service, f"{name}: no image"
        assert _pinned(_interpolate_defaults(service["image"])), f"{name}: {service['image']}"


def test_every_long_running_compose_service_has_a_healthcheck() -> None:
    for name, service in _compose_services().items():
        if _one_shot(service):
            continue
        assert service.get("restart") == "unless-stopped", name
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{name}: no healthcheck"
        assert check.get("test"), f"{name}: no healthcheck command"


def test_compose_depends_on_names_existing_services_with_conditions_they_can_meet() -> None:
    services = _compose_services()
    for name, service in services.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name}: {dependency} has no healthcheck"
            else:
                assert condition == "service_completed_successfully", f"{name}: {condition}"
                assert _one_shot(services[dependency]), f"{name}: {dependency} is not a one-shot step"


def test_the_one_shot_steps_migrate_and_create_topics_before_the_services_start() -> None:
    services = _compose_services()
    commands: dict[str, list[str]] = {
        name: service["command"] for name, service in services.items() if _one_shot(service)
    }
    assert sorted(commands.values()) == [["create-topics"], ["migrate"]]
    for name, service in services.items():
        if _chat_service(service) in ("auth", "rooms", "messages"):
            waits_for = {dep for dep, spec in service["depends_on"].items() if "completed" in spec["condition"]}
            assert waits_for == set(commands), f"{name} must wait for {sorted(commands)}"
    for service in services.values():
        env = service.get("environment", {})
        if _chat_service(service) in ("auth", "rooms"):
            prefix = f"CHAT_{_chat_service(service)}_".upper()
            assert env[f"{prefix}MIGRATE_ON_START"] == "false", "the migrate step does it, once"


def test_compose_uses_only_known_settings_in_prod_mode() -> None:
    for name, service in _compose_services().items():
        env = service.get("environment", {})
        variables = {key for key in env if key.startswith(SHARED_PREFIX)}
        if _build_target(service) is None:
            assert not variables, f"{name} is infrastructure and needs no CHAT_ variables"
            continue
        assert _unknown(variables, _chat_service(service)) == [], name
        assert env["CHAT_MODE"] == "prod", name
        assert env["CHAT_BUS"] == "kafka", name


def test_compose_secrets_come_from_the_env_file_and_the_required_ones_are_set() -> None:
    services = _compose_services()
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key in _secret_variables() or re.search(r"PASSWORD|SECRET|PEPPER", key):
                assert "${" in str(value), f"{name}: {key} must come from .env, not the compose file"
    for variable, owner in REQUIRED_SECRETS.items():
        for name, service in services.items():
            if _chat_service(service) == owner or service.get("command") == ["migrate"]:
                assert variable in service["environment"], f"{name} lacks the required secret {variable}"


def test_the_env_example_names_every_variable_compose_requires_and_the_env_file_is_ignored() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (COMPOSE_DIR / ".env.example").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert required <= example, f"missing from .env.example: {sorted(required - example)}"
    assert example <= referenced, f"unused in docker-compose.yml: {sorted(example - referenced)}"
    assert not any(name.startswith(SHARED_PREFIX) for name in example), "CHAT_ names belong to the settings"
    assert ".env" in (COMPOSE_DIR / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert not (COMPOSE_DIR / ".env").exists() or _git_ignored(COMPOSE_DIR / ".env")


def _git_ignored(path: Path) -> bool:
    git = shutil.which("git")
    if git is None:
        return True
    return subprocess.run([git, "check-ignore", "-q", str(path)], cwd=REPO, check=False).returncode == 0


# --- nginx at the edge -----------------------------------------------------------------------------------------------


def _nginx_upstreams(conf: str) -> dict[str, list[tuple[str, int]]]:
    """Each upstream block's name and its servers (host, port)."""
    return {
        match[1]: [(host, int(port)) for host, port in re.findall(r"^\s*server\s+([\w.-]+):(\d+)", match[2], re.M)]
        for match in re.finditer(r"upstream\s+(\S+)\s*\{(.*?)\}", conf, re.DOTALL)
    }


def _nginx_locations(conf: str) -> dict[str, str]:
    """Each location (its modifier and path, e.g. "/api/auth/" or "= /metrics") and the text of its block."""
    blocks = re.finditer(r"^\s*location\s+([^{]+?)\s*\{(.*?)\}", conf, re.DOTALL | re.MULTILINE)
    return {match[1].strip(): match[2] for match in blocks}


def test_nginx_sends_each_api_prefix_to_its_service_and_the_rest_to_the_gateways() -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    services = _compose_services()
    upstreams = _nginx_upstreams(conf)
    locations = _nginx_locations(conf)
    passes = {path: re.search(r"proxy_pass http://(\S+);", block) for path, block in locations.items()}
    targets = {path: {host for host, _ in upstreams[match[1]]} for path, match in passes.items() if match}
    for service in ("auth", "rooms", "messages"):
        (name,) = [name for name, spec in services.items() if _build_target(spec) == service]
        assert targets[f"/api/{service}/"] == {name}, f"/api/{service}/ goes straight to the {service} service"
    gateways = {name for name, service in services.items() if _build_target(service) == "gateway"}
    assert targets["/"] == gateways, "Socket.IO and the web client go to the gateways"
    assert set(targets) == {"/", "/api/auth/", "/api/rooms/", "/api/messages/"}
    assert {port for servers in upstreams.values() for _, port in servers} == {8000}
    for metrics in ("= /metrics", "/metrics/"):
        assert "return 404" in locations[metrics], "metrics stay inside the compose network"


def test_nginx_keeps_clients_on_one_gateway_and_passes_websocket_upgrades() -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    (gateways,) = [
        match[2] for match in re.finditer(r"upstream\s+(\S+)\s*\{(.*?)\}", conf, re.DOTALL) if "gateway" in match[2]
    ]
    assert re.search(r"^\s*ip_hash;", gateways, re.MULTILINE), "sticky sessions"
    server_level = re.sub(r"^\s*location\s+[^{]+\{.*?\}", "", conf, flags=re.DOTALL | re.MULTILINE)
    for directive in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_http_version 1.1;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_request_buffering off;",
    ):
        assert directive in server_level, f"{directive} applies to every location"
    assert all("proxy_set_header" not in block for block in _nginx_locations(conf).values()), (
        "a location with a proxy_set_header of its own would drop every inherited one"
    )


def test_nginx_is_the_only_published_port_and_starts_after_every_service_it_routes_to() -> None:
    conf = NGINX_CONF.read_text(encoding="utf-8")
    services = _compose_services()
    lb = services["lb"]
    assert any("nginx/chat.conf" in volume for volume in lb["volumes"])
    listen = re.search(r"^\s*listen\s+(\d+);", conf, re.MULTILINE)
    assert listen
    assert all(str(port).endswith(f":{listen[1]}") for port in lb["ports"])
    routed = {host for servers in _nginx_upstreams(conf).values() for host, _ in servers}
    assert set(lb["depends_on"]) == routed
    assert [name for name, service in services.items() if service.get("ports")] == ["lb"]


# --- Kubernetes (kustomize) ------------------------------------------------------------------------------------------


def _load_yaml(path: Path) -> Yaml:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def _documents(directory: Path) -> list[Yaml]:
    """Every manifest a kustomization lists as a resource (files only; directories are checked separately)."""
    kustomization = _load_yaml(directory / "kustomization.yaml")
    docs: list[Yaml] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_file():
            docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def _base_objects(kind: str) -> dict[str, Yaml]:
    return {doc["metadata"]["name"]: doc for doc in _documents(K8S_BASE) if doc["kind"] == kind}


def _pod_spec(workload: Yaml) -> Yaml:
    spec: Yaml = workload["spec"]["template"]["spec"]
    return spec


def _containers(workload: Yaml) -> list[Yaml]:
    spec = _pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _target(container: Yaml) -> str | None:
    args = container.get("args", [])
    return str(args[args.index("--target") + 1]) if "--target" in args else None


@pytest.mark.parametrize("kustomization", _kustomizations(), ids=lambda path: str(path.parent.relative_to(REPO)))
def test_every_kustomization_names_files_that_exist(kustomization: Path) -> None:
    directory = kustomization.parent
    spec = _load_yaml(kustomization)
    assert spec["resources"]
    for resource in spec["resources"]:
        path = directory / resource
        assert path.exists(), f"{resource}: no such file"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{resource}: not a kustomization"
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        for env in generator.get("envs", []) + generator.get("files", []):
            assert (directory / env).is_file(), f"{env}: no such file"
    for image in spec.get("images", []):
        assert image.get("newTag") or image.get("digest"), f"{image['name']}: not pinned"


def test_the_base_has_a_deployment_per_service_and_a_service_in_front_of_each() -> None:
    deployments = _base_objects("Deployment")
    services = _base_objects("Service")
    assert sorted(deployments) == sorted(SERVICES)
    assert sorted(services) == sorted(SERVICES)
    for name, deployment in deployments.items():
        (container,) = _pod_spec(deployment)["containers"]
        assert _target(container) == name
        assert container["image"] == f"chat-{name}", "images are set per overlay through kustomize `images`"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert services[name]["spec"]["selector"].items() <= labels.items()
        assert services[name]["spec"]["ports"][0]["targetPort"] == "http"


def test_every_deployment_probes_healthz_for_liveness_and_readyz_for_readiness() -> None:
    for name, deployment in _base_objects("Deployment").items():
        (container,) = _pod_spec(deployment)["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["http"] == 8000, name
        assert set(ports) <= {"http", "peer"}, "HTTP, and the peer watch's port (test_kustomize_render.py)"


def test_every_pod_runs_non_root_read_only_without_privileges_and_with_resources() -> None:
    workloads = {**_base_objects("Deployment"), **_base_objects("Job")}
    for name, workload in workloads.items():
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, "the uid the Dockerfile creates"
        assert pod["automountServiceAccountToken"] is False, name
        for container in _containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), name
            assert "memory" in container["resources"]["limits"], name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], "writable /tmp"  # noqa: S108


def test_the_configmaps_and_the_secret_template_use_only_known_settings() -> None:
    for directory in (K8S_BASE, K8S_OVERLAY):
        for generator in _load_yaml(directory / "kustomization.yaml").get("configMapGenerator", []):
            for env in generator["envs"]:
                variables = set(_env_file(directory / env))
                assert _unknown(variables, None) == [], env
                assert not variables & _secret_variables(), f"{env}: secrets belong in a Secret"
    base = _env_file(K8S_BASE / "config.env")
    assert base["CHAT_MODE"] == "prod"
    assert base["CHAT_BUS"] == "kafka"
    assert base["CHAT_AUTH_MIGRATE_ON_START"] == base["CHAT_ROOMS_MIGRATE_ON_START"] == "false"
    assert set(_env_file(K8S_OVERLAY / "config.env")) <= set(base), "an overlay overrides keys, it adds none"


def _secret_template() -> dict[str, dict[str, str]]:
    docs = yaml.safe_load_all((K8S_BASE / "secret.template.yaml").read_text(encoding="utf-8"))
    return {doc["metadata"]["name"]: doc["stringData"] for doc in docs if doc}


def test_the_secret_template_has_one_secret_per_service_with_its_own_variables_and_no_real_values() -> None:
    template = _secret_template()
    for name, data in template.items():
        service = re.fullmatch(r"chat-(\w+)-secrets", name)
        assert service, name
        assert service[1] in SERVICES, name
        assert _unknown(set(data), service[1]) == [], name
        assert all("REPLACE" in value for value in data.values()), f"{name}: placeholders only"
    for variable, owner in REQUIRED_SECRETS.items():
        assert variable in template[f"chat-{owner}-secrets"], f"{variable} is required outside dev mode"
    assert "secret.template.yaml" not in _load_yaml(K8S_BASE / "kustomization.yaml")["resources"]


def test_each_workload_reads_the_secrets_it_needs_and_only_known_variables() -> None:
    template = _secret_template()
    for name, workload in {**_base_objects("Deployment"), **_base_objects("Job")}.items():
        for container in _containers(workload):
            service = _target(container)
            secrets = {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}
            assert secrets <= set(template), name
            if container.get("args") == ["migrate"]:
                assert secrets == set(template), "`chat migrate` validates every service's settings"
            elif service is not None:
                expected = {f"chat-{service}-secrets"} & set(template)
                assert secrets == expected, f"{name}: a pod sees its own service's secrets only"
            env = {item["name"] for item in container.get("env", [])}
            assert _unknown(env, service) == [], name


def test_the_migration_job_migrates_then_creates_topics() -> None:
    (job,) = _base_objects("Job").values()
    pod = _pod_spec(job)
    assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
    assert [c["args"] for c in pod["containers"]] == [["create-topics"]]
    assert {c["image"] for c in _containers(job)} == {"chat-tools"}
    assert pod["restartPolicy"] == "Never"


def test_the_gateway_scales_with_an_hpa_and_keeps_clients_on_one_pod() -> None:
    (hpa,) = _base_objects("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert hpa["spec"]["minReplicas"] >= 2
    gateway = _base_objects("Deployment")["gateway"]
    assert "replicas" not in gateway["spec"], "the HPA owns the replica count"
    assert _base_objects("Service")["gateway"]["spec"]["sessionAffinity"] == "ClientIP"
    for ingress in (doc for doc in _documents(K8S_OVERLAY) if doc["kind"] == "Ingress"):
        denied = ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/denylist-source-range", "")
        if {"0.0.0.0/0", "::/0"} <= {cidr.strip() for cidr in denied.split(",")}:
            continue  # refused to everyone (the gateway's /metrics): no client ever reaches a pod through it
        backends = {
            path["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
        }
        sticky = ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/affinity") == "cookie"
        assert sticky == (backends == {"gateway"}), f"{ingress['metadata']['name']}: only the gateways need affinity"


def test_every_kubernetes_image_is_pinned_by_tag_after_kustomize() -> None:
    for directory in (K8S_BASE, K8S_OVERLAY):
        named = {image["name"] for image in _load_yaml(directory / "kustomization.yaml")["images"]}
        assert named == {f"chat-{service}" for service in (*SERVICES, "tools")}, directory

"""The web client's files at /: hashed assets cached long, index.html revalidated, the single-page app's routes
answered with index.html, the product's own paths untouched, and a clear page when the client is not built."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import CollectorRegistry
from starlette.types import Receive, Scope, Send

from chat_gateway.bootstrap import bootstrap
from chat_gateway.entrypoints.web import HASHED_CACHE, serve_web
from chat_gateway.settings import GatewaySettings
from chat_runtime.app import build_app
from chat_runtime.bus.inprocess import InProcessBroker, InProcessBus
from chat_runtime.settings import load_settings

INDEX = '<!doctype html><title>chat</title><script type="module" src="/assets/index-abc123.js"></script>'


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('chat')")
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


async def inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands for the product's HTTP app: says which path reached it."""
    body = f"app:{scope['method']} {scope['path']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def client(web_dir: Path | None) -> httpx.AsyncClient:
    app = serve_web(inner_app, web_dir)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://chat.test")


async def test_the_root_serves_index_html_revalidated_on_every_load_with_a_strict_csp(dist: Path) -> None:
    async with client(dist) as http:
        response = await http.get("/")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hashed_assets_are_cached_for_a_year_and_other_files_are_revalidated(dist: Path) -> None:
    async with client(dist) as http:
        asset = await http.get("/assets/index-abc123.js")
        icon = await http.get("/favicon.svg")
        head = await http.head("/assets/index-abc123.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('chat')"
    assert asset.headers["cache-control"] == HASHED_CACHE
    assert "javascript" in asset.headers["content-type"]
    assert icon.status_code == 200
    assert icon.headers["cache-control"] == "no-cache"
    assert head.status_code == 200
    assert head.content == b""


async def test_unknown_paths_fall_back_to_index_html_for_the_browser_router(dist: Path) -> None:
    async with client(dist) as http:
        for path in ("/rooms/5f0c", "/settings", "/index.html"):
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.text == INDEX, path
            assert response.headers["cache-control"] == "no-cache", path


async def test_a_missing_hashed_asset_is_a_404_not_the_page(dist: Path) -> None:
    async with client(dist) as http:
        response = await http.get("/assets/index-old999.js")
    assert response.status_code == 404
    assert response.text != INDEX


@pytest.mark.parametrize(
    "path",
    ["/api/auth/me", "/api", "/socket.io/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"],
)
async def test_the_products_own_paths_go_to_the_app(dist: Path, path: str) -> None:
    async with client(dist) as http:
        response = await http.get(path)
    assert response.text == f"app:GET {path}"


async def test_other_methods_go_to_the_app(dist: Path) -> None:
    async with client(dist) as http:
        response = await http.post("/rooms", content=b"{}")
    assert response.text == "app:POST /rooms"


@pytest.mark.parametrize("path", ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/.env"])
async def test_paths_never_leave_the_build(dist: Path, path: str) -> None:
    async with client(dist) as http:
        response = await http.get(path)
    assert "outside the build" not in response.text


async def test_a_missing_build_answers_a_page_that_says_to_run_make_web(tmp_path: Path) -> None:
    async with client(tmp_path / "nothing-here") as http:
        root = await http.get("/")
        deep = await http.get("/rooms/1")
        api = await http.get("/api/gateway/")
    for response in (root, deep):
        assert response.status_code == 503
        assert "web client not built" in response.text.lower()
        assert "make web" in response.text
        assert response.headers["cache-control"] == "no-cache"
    assert api.text == "app:GET /api/gateway/"


def test_web_dir_defaults_to_the_repositorys_clients_web_dist(tmp_path: Path) -> None:
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    assert settings.web_dir.parts[-3:] == ("clients", "web", "dist")
    assert (settings.web_dir.parent / "package.json").is_file()


async def test_the_gateway_module_serves_the_web_client_behind_api_and_socket_io(
    dist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_WEB_DIR", str(dist))
    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    module = bootstrap(settings, bus=bus)
    app = module.wrap(build_app([module], bus=bus, registry=CollectorRegistry()))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test") as http:
        assert (await http.get("/")).text == INDEX
        assert (await http.get("/rooms/abc")).text == INDEX
        assert (await http.get("/api/gateway/")).json()["service"] == "gateway"
        missing = await http.get("/api/gateway/nope")
        assert missing.headers["content-type"].startswith("application/problem+json")


async def test_in_split_mode_the_web_client_is_served_in_front_of_the_proxied_services(
    dist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHAT_GATEWAY_WEB_DIR", str(dist))
    monkeypatch.setenv("CHAT_GATEWAY_AUTH_URL", "http://auth.internal:8001")
    monkeypatch.setenv("CHAT_GATEWAY_ROOMS_URL", "http://rooms.internal:8002")
    monkeypatch.setenv("CHAT_GATEWAY_MESSAGES_URL", "http://messages.internal:8003")

    def upstream(request: httpx.Request) -> httpx.Response:
        body = f'{{"host": "{request.url.host}"}}'.encode()
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=httpx.ByteStream(body))

    settings = load_settings(GatewaySettings, data_dir=tmp_path)
    bus = InProcessBus(InProcessBroker())
    module = bootstrap(
        settings, bus=bus, proxied={"auth", "rooms", "messages"}, proxy_transport=httpx.MockTransport(upstream)
    )
    app = module.wrap(build_app([module], bus=bus, registry=CollectorRegistry()))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://gateway.test") as http,
    ):
        assert (await http.get("/")).text == INDEX
        assert (await http.get("/rooms/abc")).text == INDEX
        assert (await http.get("/api/auth/me")).json() == {"host": "auth.internal"}
        assert (await http.get("/api/rooms/mine")).json() == {"host": "rooms.internal"}

from pathlib import Path

import pytest

from chat_localinfra.docker_engine import DockerEndpoint, docker_endpoint, docker_engine_answers, is_ping_ok


def test_without_docker_host_the_local_socket_is_used() -> None:
    assert docker_endpoint({}) == DockerEndpoint("unix", "/var/run/docker.sock")


def test_a_unix_docker_host_names_its_socket() -> None:
    endpoint = docker_endpoint({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})

    assert endpoint == DockerEndpoint("unix", "/run/user/1000/docker.sock")
    assert endpoint.describe() == "unix:///run/user/1000/docker.sock"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DOCKER_HOST": "tcp://10.0.0.5:2375"}, DockerEndpoint("tcp", "10.0.0.5", 2375, False)),
        ({"DOCKER_HOST": "tcp://docker"}, DockerEndpoint("tcp", "docker", 2375, False)),
        (
            {"DOCKER_HOST": "tcp://docker", "DOCKER_TLS_VERIFY": "1"},
            DockerEndpoint("tcp", "docker", 2376, True),
        ),
    ],
)
def test_a_tcp_docker_host_gets_the_conventional_port(env: dict[str, str], expected: DockerEndpoint) -> None:
    assert docker_endpoint(env) == expected


def test_schemes_this_check_cannot_speak_give_no_endpoint() -> None:
    assert docker_endpoint({"DOCKER_HOST": "ssh://me@builder"}) is None


def test_no_socket_file_means_no_engine(tmp_path: Path) -> None:
    assert not docker_engine_answers(DockerEndpoint("unix", str(tmp_path / "docker.sock")))
    assert not docker_engine_answers(None)


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        (b"HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\n\r\nOK", True),
        (b"HTTP/1.0 200 OK\r\n", True),
        (b"HTTP/1.1 500 Internal Server Error\r\n", False),
        (b"", False),
        (b"garbage", False),
    ],
)
def test_only_a_200_reply_counts_as_a_pong(reply: bytes, ok: bool) -> None:
    assert is_ping_ok(reply) is ok

from pathlib import Path

import pytest

from chat_localinfra.config import (
    SERVICES,
    InfraConfig,
    find_repo_root,
    kafka_bootstrap,
    mongo_url,
    parse_only,
    parse_port,
    postgres_url,
)
from chat_localinfra.errors import ConfigError
from chat_localinfra.mongo import MongoServer, cache_size

REPO = Path("/repo")


def test_defaults_apply_when_no_variable_is_set() -> None:
    config = InfraConfig.from_env({}, repo_root=REPO)

    assert config.infra_dir == REPO.resolve() / ".infra"
    assert (config.postgres_port, config.kafka_port, config.kafka_controller_port, config.mongo_port) == (
        54329,
        19092,
        19093,
        27019,
    )
    assert config.start_timeout == 90.0


def test_every_port_and_the_folder_can_be_overridden(tmp_path: Path) -> None:
    env = {
        "CHAT_INFRA_DIR": str(tmp_path / "elsewhere"),
        "CHAT_INFRA_PG_PORT": "15432",
        "CHAT_INFRA_KAFKA_PORT": "19192",
        "CHAT_INFRA_KAFKA_CONTROLLER_PORT": "19193",
        "CHAT_INFRA_MONGO_PORT": " 27117 ",
        "CHAT_INFRA_START_TIMEOUT": "12.5",
    }

    config = InfraConfig.from_env(env, repo_root=REPO)

    assert config.infra_dir == tmp_path / "elsewhere"
    assert (config.postgres_port, config.kafka_port, config.kafka_controller_port, config.mongo_port) == (
        15432,
        19192,
        19193,
        27117,
    )
    assert config.start_timeout == 12.5


def test_a_relative_infra_dir_resolves_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    config = InfraConfig.from_env({"CHAT_INFRA_DIR": "data/infra"}, repo_root=REPO)

    assert config.infra_dir == tmp_path / "data" / "infra"


def test_a_blank_variable_means_the_default() -> None:
    assert parse_port({"CHAT_INFRA_PG_PORT": "  "}, "CHAT_INFRA_PG_PORT", 54329) == 54329


@pytest.mark.parametrize("raw", ["abc", "0", "65536", "-1", "54.3"])
def test_a_port_that_is_not_a_tcp_port_is_refused_with_the_variable_name(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHAT_INFRA_MONGO_PORT"):
        parse_port({"CHAT_INFRA_MONGO_PORT": raw}, "CHAT_INFRA_MONGO_PORT", 27019)


def test_two_servers_on_the_same_port_are_refused() -> None:
    with pytest.raises(ConfigError, match="four different ports"):
        InfraConfig.from_env({"CHAT_INFRA_KAFKA_CONTROLLER_PORT": "19092"}, repo_root=REPO)


@pytest.mark.parametrize("raw", ["soon", "0", "-3"])
def test_a_start_timeout_must_be_a_positive_number(raw: str) -> None:
    with pytest.raises(ConfigError, match="CHAT_INFRA_START_TIMEOUT"):
        InfraConfig.from_env({"CHAT_INFRA_START_TIMEOUT": raw}, repo_root=REPO)


def test_only_keeps_the_canonical_order_and_ignores_case_and_blanks() -> None:
    assert parse_only("Mongo, postgres,,") == ("postgres", "mongo")
    assert parse_only(["kafka"]) == ("kafka",)


@pytest.mark.parametrize("empty", [None, "", " , ", []])
def test_no_selection_means_every_server(empty: str | list[str] | None) -> None:
    assert parse_only(empty) == SERVICES


def test_an_unknown_service_name_is_refused_with_the_valid_choices() -> None:
    with pytest.raises(ConfigError, match=r"redis.*postgres, kafka, mongo"):
        parse_only("postgres,redis")


def test_the_urls_point_at_loopback_with_the_expected_shapes() -> None:
    assert postgres_url(54329) == "postgresql://postgres@127.0.0.1:54329/postgres"
    assert kafka_bootstrap(19092) == "127.0.0.1:19092"
    assert mongo_url(27019) == "mongodb://127.0.0.1:27019/?directConnection=true"


def test_the_repo_root_is_the_folder_holding_the_kafka_pom(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "kafka").mkdir(parents=True)
    (tmp_path / "deploy" / "kafka" / "pom.xml").write_text("<project/>")
    nested = tmp_path / "services" / "auth" / "src"
    nested.mkdir(parents=True)

    assert find_repo_root(nested) == tmp_path


def test_a_folder_outside_any_checkout_has_no_repo_root(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="repository root"):
        find_repo_root(tmp_path)


def test_more_mongo_flags_are_split_like_a_shell_and_go_after_ours() -> None:
    config = InfraConfig.from_env({"CHAT_INFRA_MONGO_ARGS": "--cache-size 1G --log-level 'INFO'"}, repo_root=REPO)
    assert config.mongo_args == ("--cache-size", "1G", "--log-level", "INFO")
    argv = MongoServer(config).argv()
    assert argv[-4:] == ["--cache-size", "1G", "--log-level", "INFO"]
    assert argv.index("--cache-size") < len(argv) - 4  # ours first, so the last value given wins


def test_unbalanced_quotes_in_the_mongo_flags_are_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="CHAT_INFRA_MONGO_ARGS"):
        InfraConfig.from_env({"CHAT_INFRA_MONGO_ARGS": "--log-level 'INFO"}, repo_root=REPO)


def test_the_mongo_wire_server_runs_standalone_so_it_keeps_no_oplog() -> None:
    assert "--standalone" in MongoServer(InfraConfig.from_env({}, repo_root=REPO)).argv()


def test_the_mongo_wire_server_gets_a_quarter_of_the_memory_for_its_cache_between_1_and_2_gib() -> None:
    argv = MongoServer(InfraConfig.from_env({}, repo_root=REPO)).argv()
    assert argv[argv.index("--cache-size") + 1] == cache_size()
    gib = 2**30
    assert [cache_size(n * gib) for n in (2, 4, 6, 8, 24)] == ["1024M", "1024M", "1536M", "2048M", "2048M"]

"""AMQP_URL as a node list: parsing, validation at start, masking; quorum queue arguments."""

import re
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from messaging.nodes import where
from messaging.topology import (
    QUORUM_GROUP_SIZE,
    WORK_QUEUE_ARGUMENTS,
    broker_major_version,
    dead_queue_arguments,
)
from schemas.amqp_nodes import parse_nodes
from schemas.redact import MASK, redact
from schemas.settings import Settings

THREE = (
    "amqp://lr:pw-one@rabbit1:5672/prod, amqp://lr:pw-two@rabbit2:5672/prod,"
    "amqps://lr:pw-three@rabbit3/prod"
)


def test_a_list_is_split_in_order_and_trimmed() -> None:
    assert parse_nodes(THREE) == (
        "amqp://lr:pw-one@rabbit1:5672/prod",
        "amqp://lr:pw-two@rabbit2:5672/prod",
        "amqps://lr:pw-three@rabbit3/prod",
    )
    assert [where(url) for url in parse_nodes(THREE)] == [
        "rabbit1:5672",
        "rabbit2:5672",
        "rabbit3:5671",
    ]


def test_one_url_is_a_list_of_one() -> None:
    assert parse_nodes("amqp://guest:guest@localhost:5672/") == (
        "amqp://guest:guest@localhost:5672/",
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("amqp://a/vh,,amqp://b/vh", "an empty entry"),
        ("amqp://a/vh,http://b/vh", "node 2: must start with amqp:// or amqps://"),
        ("amqp://u:pa,ss@a/vh,amqp://b/vh", "write a comma inside a password as %2C"),
        ("amqp:///vh,amqp://b/vh", "node 1: has no host"),
        ("amqp://a/one,amqp://b/two", "every node must name the same vhost"),
        ("amqp://a/,amqp://b", ""),  # "/" and no path are both the default vhost
        ("amqp://a/%2F,amqp://b", ""),
    ],
)
def test_malformed_lists_are_refused_with_a_reason(value: str, reason: str) -> None:
    if not reason:
        assert len(parse_nodes(value)) == 2
        return
    with pytest.raises(ValueError, match=reason.replace("+", r"\+")):
        parse_nodes(value)


def test_settings_take_a_list_and_refuse_a_bad_one_without_quoting_passwords() -> None:
    assert Settings(amqp_url=THREE, _env_file=None).amqp_url == THREE  # type: ignore[call-arg]
    with pytest.raises(ValidationError) as refused:
        Settings(amqp_url=THREE + ",http://lr:pw-four@x/", _env_file=None)  # type: ignore[call-arg]
    message = str(refused.value.errors(include_url=False)[0]["msg"])
    assert "node 4: must start with amqp://" in message
    assert "pw-" not in message


def test_every_password_in_a_list_is_masked() -> None:
    masked = redact(f"worker failed: AMQP_URL={THREE}")
    assert "pw-" not in masked
    assert masked.count(f"lr:{MASK}@") == 3
    assert "rabbit1:5672/prod" in masked and "rabbit3/prod" in masked


def test_quorum_queues_are_placed_on_three_nodes() -> None:
    assert WORK_QUEUE_ARGUMENTS["x-quorum-initial-group-size"] == QUORUM_GROUP_SIZE == 3
    assert dead_queue_arguments("3.10.8")["x-quorum-initial-group-size"] == 3


@pytest.mark.parametrize(
    ("version", "limit"),
    [
        ("3.10.8", None),  # no limit unless one is set; -1 would drop at the first return
        (b"3.13.7", None),
        ("4.0.5", -1),  # the default would be 20; -1 is "no limit"
        ("4.1.0+beta", -1),
        (None, None),  # unknown: 3.x's arguments (a limit of 20 at worst, never "drop at once")
        ("unknown", None),
    ],
)
def test_the_dead_letter_queue_never_has_a_delivery_limit(
    version: str | bytes | None, limit: int | None
) -> None:
    assert dead_queue_arguments(version).get("x-delivery-limit") == limit


def test_broker_major_version() -> None:
    assert broker_major_version("3.10.8") == 3
    assert broker_major_version("4.0.0-rc.1") == 4
    assert broker_major_version("") == 0


def test_the_compose_cluster_profile_lists_its_three_nodes_everywhere() -> None:
    """worker-cluster and api-cluster get every node of the profile, which the nodes' peer
    discovery file lists too (tests/compose runs the profile itself, where Podman is set up)."""
    root = Path(__file__).resolve().parents[2]
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", (root / "docker-compose.yml").read_text())
    services = yaml.safe_load(text)["services"]
    nodes = sorted(name for name, s in services.items() if "cluster" in s.get("profiles", []))
    assert nodes == ["api-cluster", "rabbitmq-1", "rabbitmq-2", "rabbitmq-3", "worker-cluster"]
    for client in ("worker-cluster", "api-cluster"):
        url = services[client]["environment"]["AMQP_URL"]
        assert [where(n) for n in parse_nodes(url)] == [f"rabbitmq-{n}:5672" for n in (1, 2, 3)]
    peers = (root / "deploy" / "rabbitmq-cluster.conf").read_text()
    for n in (1, 2, 3):
        assert services[f"rabbitmq-{n}"]["hostname"] == f"rabbitmq-{n}"
        assert f"classic_config.nodes.{n} = rabbit@rabbitmq-{n}" in peers

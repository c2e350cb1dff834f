"""The AsyncAPI document: valid AsyncAPI 3.0, complete, and `docs/asyncapi.json` up to date."""

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from messaging import topology
from messaging.asyncapi import (
    COMMANDS,
    asyncapi_document,
    asyncapi_json,
    event_payload_models,
)
from schemas.events import EventType, InteractionEvent, LeadMergedEvent

ROOT = Path(__file__).resolve().parents[2]
DOCS_COPY = ROOT / "docs" / "asyncapi.json"
# The official schema from the @asyncapi/specs npm package (tests/asyncapi/README.md).
OFFICIAL_SCHEMA = ROOT / "tests" / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_docs_copy_follows_the_code(document: dict[str, Any]) -> None:
    """A changed model, routing key or event type changes the document; the copy must follow."""
    stale = "docs/asyncapi.json is out of date: run `leadrouter asyncapi > docs/asyncapi.json`"
    assert DOCS_COPY.exists(), stale
    assert json.loads(DOCS_COPY.read_text()) == document, stale
    assert DOCS_COPY.read_text() == asyncapi_json(), stale


def test_valid_against_the_official_asyncapi_3_schema(document: dict[str, Any]) -> None:
    validator = jsonschema_rs.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text()))
    errors = [
        f"{list(e.instance_path)}: {e.message[:300]}" for e in validator.iter_errors(document)
    ]
    assert errors == []


def test_the_official_schema_refuses_a_broken_document(document: dict[str, Any]) -> None:
    """The validation above can fail: a wrong AMQP binding is caught."""
    validator = jsonschema_rs.Draft7Validator(json.loads(OFFICIAL_SCHEMA.read_text()))
    broken = json.loads(json.dumps(document))
    broken["operations"]["sendDeadLetter"]["bindings"]["amqp"]["deliveryMode"] = 3
    assert not validator.is_valid(broken)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    """The JSON Schema cannot check `$ref`s; a dangling one breaks every AsyncAPI tool."""
    refs = list(_refs(document))
    assert len(refs) > 30
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, ref
            node = node[part]


def test_commands_have_their_exchange_routing_key_and_quorum_queue(
    document: dict[str, Any],
) -> None:
    channels = document["channels"].values()
    for command in COMMANDS:
        name = command.model.__name__
        published = _channel(channels, command.routing_key)
        binding = published["bindings"]["amqp"]
        assert binding["exchange"]["name"] == topology.COMMANDS_EXCHANGE
        assert binding["exchange"]["type"] == "topic"
        queue = _channel(channels, command.queue)["bindings"]["amqp"]
        assert queue["queue"] == {
            "name": command.queue,
            "durable": True,
            "exclusive": False,
            "autoDelete": False,
        }
        assert queue["x-arguments"]["x-queue-type"] == "quorum"
        assert queue["x-bindings"] == [
            {"exchange": topology.COMMANDS_EXCHANGE, "routingKey": command.routing_key}
        ]
        schema = document["components"]["schemas"][name]
        assert set(schema["properties"]) == set(command.model.model_fields)
        receive = document["operations"]["receive" + name]
        assert receive["action"] == "receive"
        assert receive["reply"]["address"]["location"] == "$message.header#/reply_to"


def test_every_work_queue_of_the_topology_is_a_command() -> None:
    """Commands are listed by hand in `messaging.asyncapi.COMMANDS` (a queue's model is not
    in the topology); a new `*_QUEUE` / `*_ROUTING_KEY` pair must be added there."""
    queues = {
        value
        for name, value in vars(topology).items()
        if name.endswith("_QUEUE") and value != topology.DEAD_QUEUE
    }
    keys = {value for name, value in vars(topology).items() if name.endswith("_ROUTING_KEY")}
    assert {command.queue for command in COMMANDS} == queues
    assert {command.routing_key for command in COMMANDS} == keys


def test_every_event_type_has_a_channel_and_a_send_operation(document: dict[str, Any]) -> None:
    sent = {
        _target(document, operation["channel"])["address"]
        for operation in document["operations"].values()
        if operation["action"] == "send"
    }
    for event_type in EventType:
        channel = _channel(document["channels"].values(), event_type.value)
        assert channel["bindings"]["amqp"]["exchange"]["name"] == topology.EVENTS_EXCHANGE
        assert event_type.value in sent
    assert event_payload_models()[EventType.LEAD_MERGED] is LeadMergedEvent
    assert event_payload_models()[EventType.ASSIGNED] is InteractionEvent


def test_dead_letters_carry_x_error(document: dict[str, Any]) -> None:
    letter = document["components"]["messages"]["DeadLetter"]
    assert "x-error" in letter["headers"]["properties"]
    dlx = document["channels"]["interactionsDlx"]["bindings"]["amqp"]["exchange"]
    assert (dlx["name"], dlx["type"]) == (topology.DEAD_LETTER_EXCHANGE, "fanout")
    dead = _channel(document["channels"].values(), topology.DEAD_QUEUE)
    assert dead["bindings"]["amqp"]["x-bindings"][0]["exchange"] == topology.DEAD_LETTER_EXCHANGE


def test_message_traits_describe_the_amqp_properties(document: dict[str, Any]) -> None:
    traits = document["components"]["messageTraits"]
    command = traits["command"]["x-amqp-properties"]["properties"]
    assert {"message_id", "correlation_id", "reply_to", "content_type"} <= set(command)
    event = traits["event"]["x-amqp-properties"]["properties"]
    assert event["delivery_mode"] == {"const": 2}
    assert event["content_type"] == {"const": "application/json"}


def test_command_examples_are_accepted_by_the_models(document: dict[str, Any]) -> None:
    for command in COMMANDS:
        message = document["components"]["messages"][command.model.__name__]
        for example in message["examples"]:
            command.model.model_validate(example["payload"])


def _channel(channels: Any, address: str) -> dict[str, Any]:
    found = [channel for channel in channels if channel["address"] == address]
    assert len(found) == 1, address
    return dict(found[0])


def _target(document: dict[str, Any], reference: dict[str, str]) -> dict[str, Any]:
    node: Any = document
    for part in reference["$ref"][2:].split("/"):
        node = node[part]
    return dict(node)


def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)

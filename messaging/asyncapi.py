"""The AsyncAPI 3.0 document of the AMQP surface: commands, events, queues, dead letters.

Generated, never written by hand: names come from `messaging.topology`, payloads from the
pydantic models that parse and build the messages, event channels from `EventType`. So a new
event type or a changed field shows up here by itself, and `tests/unit/test_asyncapi.py` fails
until the committed copy (`docs/asyncapi.json`) follows. `leadrouter asyncapi` prints it and
the API serves it at `/asyncapi.json`.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from messaging import topology
from messaging.reply_to import SERVICE_PREFIXES
from schemas import events
from schemas.events import EventType, InteractionEvent
from schemas.messages import AcceptInteraction, CloseInteraction, CreateInteraction

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"  # the AMQP 0-9-1 bindings that AsyncAPI 3.0.0 knows
JSON_MEDIA_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery_mode
SERVER = "rabbitmq"
SCHEMAS_REF = "#/components/schemas/"


@dataclass(frozen=True)
class Command:
    """An inbound command: its routing key on the commands exchange, its queue, its model."""

    routing_key: str
    queue: str
    model: type[BaseModel]
    summary: str


COMMANDS = (
    Command(
        topology.CREATE_ROUTING_KEY,
        topology.CREATE_QUEUE,
        CreateInteraction,
        "A new interaction: the lead is found or created by its contacts, then routed.",
    ),
    Command(
        topology.CLOSE_ROUTING_KEY,
        topology.CLOSE_QUEUE,
        CloseInteraction,
        "An interaction is finished: its operator's place is freed for waiting interactions.",
    ),
    Command(
        topology.ACCEPT_ROUTING_KEY,
        topology.ACCEPT_QUEUE,
        AcceptInteraction,
        "The operator an interaction is offered to takes it; refused (dead-lettered with the "
        "reason) when the offer is another operator's or has expired.",
    ),
)


def asyncapi_document() -> dict[str, Any]:
    """The whole document as plain JSON data; pure, so the CLI, the API and the test that
    compares it with `docs/asyncapi.json` all see the same thing."""
    event_models = event_payload_models()
    models = [command.model for command in COMMANDS] + _unique(event_models.values())
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    _add_commands(channels, operations, messages)
    _add_events(channels, operations, messages, event_models)
    _add_dead_letters(channels, operations, messages)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": _info(),
        "defaultContentType": JSON_MEDIA_TYPE,
        "servers": {SERVER: _server()},
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": component_schemas(models),
            "messages": messages,
            "messageTraits": {
                "command": _command_trait(),
                "event": _event_trait(),
            },
            "correlationIds": {
                "correlationId": {
                    "location": "$message.header#/correlation_id",
                    "description": "The AMQP `correlation_id` property: set by whoever publishes "
                    "a command, copied onto the events that answer it.",
                }
            },
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "The user and password in AMQP_URL.",
                }
            },
        },
    }


def asyncapi_json() -> str:
    """The document as `leadrouter asyncapi` prints it: indent 2, sorted keys, so that
    regenerating an unchanged document changes no byte of `docs/asyncapi.json`."""
    return json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"


def event_payload_models() -> dict[EventType, type[BaseModel]]:
    """Each event type's model: a model in `schemas.events` whose `type` has a default owns
    that type; every other type is an `InteractionEvent`, so a new `EventType` member gets its
    channel without a change here."""
    owners: dict[EventType, type[BaseModel]] = {}
    for model in vars(events).values():
        if isinstance(model, type) and issubclass(model, BaseModel) and model is not BaseModel:
            field = model.model_fields.get("type")
            if field is not None and isinstance(field.default, EventType):
                owners[field.default] = model
    return {event_type: owners.get(event_type, InteractionEvent) for event_type in EventType}


def component_schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """The models' JSON Schemas (what they accept) with shared definitions, every `$ref`
    pointing into `#/components/schemas/`; pydantic's 2020-12 output uses nothing that
    AsyncAPI's draft-07 Schema Object refuses."""
    _, top = models_json_schema(
        [(model, "validation") for model in models],
        ref_template=SCHEMAS_REF + "{model}",
    )
    return dict(top.get("$defs", {}))


def _add_commands(
    channels: dict[str, Any], operations: dict[str, Any], messages: dict[str, Any]
) -> None:
    replies = _reply_channel()
    _put(channels, "replyTo", replies)
    for command in COMMANDS:
        name = command.model.__name__
        _put(messages, name, _command_message(command))
        publish = _name(command.routing_key)
        queue = _name(command.queue) + "Queue"
        _put(
            channels,
            publish,
            {
                "address": command.routing_key,
                "title": f"{command.routing_key} on exchange {topology.COMMANDS_EXCHANGE}",
                "description": f"Publish `{name}` commands here: exchange "
                f"`{topology.COMMANDS_EXCHANGE}`, routing key `{command.routing_key}`. "
                f"The exchange routes them to queue `{command.queue}`.",
                "messages": {name: _ref("components/messages", name)},
                "bindings": _exchange_binding(topology.COMMANDS),
            },
        )
        _put(
            channels,
            queue,
            {
                "address": command.queue,
                "title": f"queue {command.queue}",
                "description": f"Durable quorum queue bound to exchange "
                f"`{topology.COMMANDS_EXCHANGE}` with routing key `{command.routing_key}`. "
                f"A message that fails validation or cannot be processed goes to "
                f"`{topology.DEAD_QUEUE}` with the reason in `x-error`.",
                "messages": {name: _ref("components/messages", name)},
                "bindings": _queue_binding(
                    command.queue,
                    topology.WORK_QUEUE_ARGUMENTS,
                    [(topology.COMMANDS_EXCHANGE, command.routing_key)],
                ),
            },
        )
        _put(
            operations,
            "receive" + name,
            {
                "action": "receive",
                "channel": _ref("channels", queue),
                "messages": [_ref(f"channels/{queue}/messages", name)],
                "summary": command.summary,
                "description": f"`leadrouter worker` consumes `{command.queue}` and acks a "
                "message once its outcome is stored. The result event goes to "
                f"`{topology.EVENTS_EXCHANGE}` and, when the command has `reply_to`, to that "
                "queue as well.",
                "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
                "reply": {
                    "address": {
                        "location": "$message.header#/reply_to",
                        "description": "The command's `reply_to` property.",
                    },
                    "channel": _ref("channels", "replyTo"),
                    "messages": [
                        _ref("channels/replyTo/messages", message)
                        for message in replies["messages"]
                    ],
                },
            },
        )


def _add_events(
    channels: dict[str, Any],
    operations: dict[str, Any],
    messages: dict[str, Any],
    event_models: dict[EventType, type[BaseModel]],
) -> None:
    for event_type, model in event_models.items():
        name = _pascal(event_type.value)
        channel = _name(event_type.value)
        _put(messages, name, _event_message(event_type, model))
        _put(
            channels,
            channel,
            {
                "address": event_type.value,
                "title": f"{event_type.value} on exchange {topology.EVENTS_EXCHANGE}",
                "description": f"`{event_type.value}` events: exchange "
                f"`{topology.EVENTS_EXCHANGE}`, routing key `{event_type.value}`. Bind a queue "
                "of your own to receive them.",
                "messages": {name: _ref("components/messages", name)},
                "bindings": _exchange_binding(topology.EVENTS),
            },
        )
        _put(
            operations,
            "send" + name,
            {
                "action": "send",
                "channel": _ref("channels", channel),
                "messages": [_ref(f"channels/{channel}/messages", name)],
                "summary": f"Publish `{event_type.value}` (worker and API, with publisher "
                "confirms; an event that nobody is bound for yet is not an error).",
                "bindings": {
                    "amqp": {
                        "deliveryMode": PERSISTENT,
                        "mandatory": False,
                        "timestamp": True,
                        "bindingVersion": AMQP_BINDING_VERSION,
                    }
                },
            },
        )


def _add_dead_letters(
    channels: dict[str, Any], operations: dict[str, Any], messages: dict[str, Any]
) -> None:
    _put(messages, "DeadLetter", _dead_letter_message())
    dlx, dead = _name(topology.DEAD_LETTER_EXCHANGE), _name(topology.DEAD_QUEUE) + "Queue"
    letter = {"DeadLetter": _ref("components/messages", "DeadLetter")}
    _put(
        channels,
        dlx,
        {
            "address": None,
            "title": f"exchange {topology.DEAD_LETTER_EXCHANGE}",
            "description": f"Fanout exchange for dead letters, routed to `{topology.DEAD_QUEUE}` "
            "whatever their routing key (the original one is kept). The work queues name it "
            "as their `x-dead-letter-exchange`, so the broker's own delivery limit ends here "
            "too.",
            "messages": dict(letter),
            "bindings": _exchange_binding(topology.DEAD_LETTERS),
        },
    )
    _put(
        channels,
        dead,
        {
            "address": topology.DEAD_QUEUE,
            "title": f"queue {topology.DEAD_QUEUE}",
            "description": "Every message that cannot be processed, never silently dropped. "
            "On RabbitMQ 4 the queue also has `x-delivery-limit: -1` (no limit), so a "
            "dead letter is kept however often it is looked at.",
            "messages": dict(letter),
            "bindings": _queue_binding(
                topology.DEAD_QUEUE,
                topology.dead_queue_arguments(None),
                [(topology.DEAD_LETTER_EXCHANGE, "")],
            ),
        },
    )
    _put(
        operations,
        "sendDeadLetter",
        {
            "action": "send",
            "channel": _ref("channels", dlx),
            "messages": [_ref(f"channels/{dlx}/messages", "DeadLetter")],
            "summary": "A command that cannot be processed: not JSON, invalid, an unknown "
            "source or interaction, too large, or still failing after the retry budget.",
            "bindings": {
                "amqp": {
                    "deliveryMode": PERSISTENT,
                    "mandatory": False,
                    "bindingVersion": AMQP_BINDING_VERSION,
                }
            },
        },
    )
    _put(
        operations,
        "receiveDeadLetter",
        {
            "action": "receive",
            "channel": _ref("channels", dead),
            "messages": [_ref(f"channels/{dead}/messages", "DeadLetter")],
            "summary": "`leadrouter dlq list` shows dead letters; `leadrouter dlq replay` "
            f"publishes them again to `{topology.COMMANDS_EXCHANGE}` with their original "
            "routing key and properties, without `x-error`.",
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
        },
    )


def _reply_channel() -> dict[str, Any]:
    names = [_pascal(event_type.value) for event_type in EventType]
    own = ", ".join(f"`{prefix}`, `{prefix}.*`" for prefix in SERVICE_PREFIXES)
    return {
        "address": None,
        "title": "reply_to queue",
        "description": "The queue a command names in `reply_to`: its result event is also "
        "published there through the default exchange, with the command's `correlation_id`. "
        f"A name of this service's own ({own}), a malformed name, or a form the broker "
        "refuses (a direct reply-to name that does not decode to one of its nodes) is ignored "
        "(logged and counted), never retried; the command is processed all the same.",
        "messages": {name: _ref("components/messages", name) for name in names},
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {"name": "", "type": "default"},
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
    }


def _command_message(command: Command) -> dict[str, Any]:
    name = command.model.__name__
    message: dict[str, Any] = {
        "name": name,
        "title": command.routing_key,
        "summary": command.summary,
        "contentType": JSON_MEDIA_TYPE,
        "payload": {"$ref": SCHEMAS_REF + name},
        "traits": [_ref("components/messageTraits", "command")],
        "bindings": {"amqp": {"bindingVersion": AMQP_BINDING_VERSION}},
    }
    example = _field_examples(command.model)
    if example:
        message["examples"] = [{"name": "example", "payload": example}]
    return message


def _event_message(event_type: EventType, model: type[BaseModel]) -> dict[str, Any]:
    return {
        "name": _pascal(event_type.value),
        "title": event_type.value,
        "summary": f"A `{model.__name__}` with `type` `{event_type.value}`.",
        "contentType": JSON_MEDIA_TYPE,
        "payload": {
            "allOf": [
                {"$ref": SCHEMAS_REF + model.__name__},
                {"properties": {"type": {"const": event_type.value}}, "required": ["type"]},
            ]
        },
        "traits": [_ref("components/messageTraits", "event")],
        "bindings": {
            "amqp": {"messageType": event_type.value, "bindingVersion": AMQP_BINDING_VERSION}
        },
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "dead letter",
        "summary": "The original message, body and properties, plus why it failed.",
        "description": "The body is the original one byte for byte (it may not be JSON: that "
        "can be why it is here), with the original `content_type`, `message_id`, "
        "`correlation_id` and `reply_to`; delivery_mode 2. Readable by any AMQP client: a "
        "property or header name that was not UTF-8 is replaced by its escaped text "
        "(`bad-\\xff`), its bytes kept in a byte-array header; and within the broker's "
        "frame size: original headers that would not fit are dropped. `x-error` says what was "
        "changed. A message the broker dead-lettered by itself (its own delivery limit on the "
        "work queues) carries `x-death` but no `x-error`.",
        "headers": {
            "type": "object",
            "properties": {
                "x-error": _property("Why, in one line (no line breaks, credentials masked)."),
                "x-original-routing-key": _property("The routing key the message arrived with."),
                "x-original-exchange": _property("The exchange the message arrived through."),
                "x-original-message-id": _property(
                    "The bytes of `message_id` when they were not UTF-8 (so too "
                    "`x-original-correlation-id`, `-reply-to`, `-type`, `-app-id`, "
                    "`-content-type`, `-content-encoding`).",
                ),
                "x-original-header-names": _property(
                    "The bytes of each header name that was not UTF-8 (shown escaped).", "array"
                ),
                "x-original-timestamp": _property(
                    "The 8 bytes of a `timestamp` no date can hold (dropped from the letter)."
                ),
                "x-dropped-headers": _property(
                    "How many original headers were dropped to fit the frame size.", "integer"
                ),
                "x-undecodable-headers": _property(
                    "Headers that could not be decoded (nested too deep), kept as byte arrays.",
                    "array",
                ),
                "x-death": _property(
                    "Set by the broker when it dead-lettered the message itself.", "array"
                ),
            },
            "additionalProperties": True,
        },
        "payload": {"description": "The original body, unchanged."},
        "correlationId": _ref("components/correlationIds", "correlationId"),
        "bindings": {"amqp": {"bindingVersion": AMQP_BINDING_VERSION}},
    }


def _command_trait() -> dict[str, Any]:
    return _amqp_properties_trait(
        "A command's",
        {
            "message_id": _property(
                "The idempotency key: the same message_id delivered again "
                "(a redelivery or a second publish) creates no second interaction and "
                "yields the same event again.",
            ),
            "correlation_id": _property("Copied onto the result event."),
            "reply_to": _property(
                "A queue that also receives the result event (through the "
                "default exchange); this service's own queue names are ignored.",
            ),
            "content_type": _property(
                "application/json (parameters such as charset allowed) or "
                "none; anything else is dead-lettered.",
            ),
            "delivery_mode": {
                "enum": [1, PERSISTENT],
                "description": "2 (persistent) so that a command survives a broker restart "
                "in the durable queue.",
            },
        },
    )


def _event_trait() -> dict[str, Any]:
    return _amqp_properties_trait(
        "An event's",
        {
            "message_id": _property(
                "The event's `event_id`; stable: an event sent again "
                "carries the same id, so consumers can drop duplicates.",
            ),
            "correlation_id": _property("Copied from the command the event answers."),
            "content_type": {"const": JSON_MEDIA_TYPE},
            "delivery_mode": {"const": PERSISTENT},
            "type": _property("The event type (= routing key)."),
            "timestamp": _property("When it was published.", "integer"),
        },
        required=["message_id", "content_type", "delivery_mode", "type", "timestamp"],
    )


def _amqp_properties_trait(
    whose: str, properties: dict[str, Any], required: list[str] | None = None
) -> dict[str, Any]:
    """A message trait for commands or events: JSON, correlated by `correlation_id`, and their
    AMQP properties documented under `x-amqp-properties` (AsyncAPI's AMQP binding has no
    place for them)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required is not None:
        schema["required"] = required
    return {
        "description": f"{whose} AMQP properties (`x-amqp-properties`; they are message "
        "properties, not headers).",
        "contentType": JSON_MEDIA_TYPE,
        "correlationId": _ref("components/correlationIds", "correlationId"),
        "x-amqp-properties": schema,
    }


def _info() -> dict[str, Any]:
    return {
        "title": "leadrouter",
        "version": _version(),
        "description": "Routes customer interactions from RabbitMQ to operators. Bots and "
        f"services publish commands to the topic exchange `{topology.COMMANDS_EXCHANGE}`; "
        "`leadrouter worker` consumes them from durable quorum queues, assigns operators and "
        f"publishes events to the topic exchange `{topology.EVENTS_EXCHANGE}`: at least "
        "once, and in steady state exactly once; each carries a `sequence` (per interaction, "
        "per lead for `lead.merged`) so a subscriber can keep the highest and ignore older "
        "ones that arrive late. Whatever "
        f"cannot be processed ends in `{topology.DEAD_QUEUE}` with an `x-error` header. "
        "The worker declares all of it idempotently at start.",
        "license": {"name": "MIT"},
    }


def _server() -> dict[str, Any]:
    return {
        "host": "localhost:5672",
        "protocol": "amqp",
        "protocolVersion": "0.9.1",
        "title": "RabbitMQ",
        "description": "A placeholder: the broker is the one in AMQP_URL (default "
        "`amqp://guest:guest@localhost:5672/`). The vhost in that URL isolates deployments: "
        "every exchange and queue here lives in it.",
        "security": [_ref("components/securitySchemes", "userPassword")],
    }


def _exchange_binding(exchange: topology.Exchange) -> dict[str, Any]:
    """As `topology.declare_exchange` declares it: durable, never auto-deleted."""
    described = {"name": exchange.name, "type": exchange.kind.value}
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {**described, "durable": True, "autoDelete": False},
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _queue_binding(
    queue: str, arguments: dict[str, Any], bound: list[tuple[str, str]]
) -> dict[str, Any]:
    """The binding has no field for queue arguments or bindings, hence `x-` extensions."""
    return {
        "amqp": {
            "is": "queue",
            "queue": {"name": queue, "durable": True, "exclusive": False, "autoDelete": False},
            "x-arguments": dict(arguments),
            "x-bindings": [{"exchange": name, "routingKey": key} for name, key in bound],
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _field_examples(model: type[BaseModel]) -> dict[str, Any]:
    """A sample body from the fields' own `examples`, the ones `/docs` shows too."""
    properties = model.model_json_schema()["properties"]
    return {
        name: field["examples"][0]
        for name, field in properties.items()
        if isinstance(field, dict) and field.get("examples")
    }


def _version() -> str:
    try:
        return metadata.version("leadrouter")
    except metadata.PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def _property(description: str, json_type: str = "string") -> dict[str, str]:
    """A documented property of a message (a header or an AMQP property)."""
    return {"type": json_type, "description": description}


def _ref(section: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{section}/{name}"}


def _name(dotted: str) -> str:
    """`interaction.offer_expired` -> `interactionOfferExpired`: an id usable in `$ref`s."""
    first, *rest = re.split(r"[^0-9A-Za-z]+", dotted)
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


def _pascal(dotted: str) -> str:
    name = _name(dotted)
    return name[:1].upper() + name[1:]


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Two names that map to one id would silently hide one of them."""
    if key in target:
        raise ValueError(f"AsyncAPI id {key!r} is generated twice")
    target[key] = value


def _unique(models: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))

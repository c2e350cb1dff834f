"""`API_ALLOWED_HOSTS` and the `Host` header reduced to comparable names; the guard's refusal
of a websocket handshake; what a 422 may say of pydantic's validators."""

from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.host_guard import HostGuardMiddleware
from api.validation_errors import public_errors, without_reprs
from schemas.hosts import DEFAULT_ALLOWED_HOSTS, host_name, parse_allowed_hosts

LOCAL = parse_allowed_hosts(DEFAULT_ALLOWED_HOSTS)


def test_default_is_the_loopback_names() -> None:
    assert frozenset({"127.0.0.1", "localhost", "::1"}) == LOCAL


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("api.example.com", {"api.example.com"}),
        (" API.Example.COM. , 10.0.0.5 ", {"api.example.com", "10.0.0.5"}),
        ("[::1],0:0:0:0:0:0:0:1", {"::1"}),
        ("leadrouter_api_1,localhost,", {"leadrouter_api_1", "localhost"}),
    ],
)
def test_allowed_hosts_are_parsed_to_canonical_names(value: str, names: set[str]) -> None:
    assert parse_allowed_hosts(value) == frozenset(names)


@pytest.mark.parametrize("value", ["*", "localhost,*", " * "])
def test_a_star_allows_any_host(value: str) -> None:
    assert parse_allowed_hosts(value) is None


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("http://api.example.com", "'http://api.example.com'"),
        ("api.example.com:8000", "'api.example.com:8000'"),
        ("localhost,example.com/api", "'example.com/api'"),
        ("*.example.com", "'*.example.com'"),
        ("bad host", "'bad host'"),
        ("-leading.example", "'-leading.example'"),
    ],
)
def test_a_bad_entry_is_named_in_one_line(value: str, quoted: str) -> None:
    with pytest.raises(ValueError, match="is not a host name or IP address") as refused:
        parse_allowed_hosts(value)
    assert str(refused.value).startswith(quoted)
    assert "\n" not in str(refused.value)


def test_a_list_without_names_is_refused() -> None:
    with pytest.raises(ValueError, match="names no host"):
        parse_allowed_hosts(" , ")


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8000", "localhost"),
        ("localhost.:8000", "localhost"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("[0:0:0:0:0:0:0:1]:80", "::1"),
        ("::1", "::1"),
        ("rebind.attacker.example:8000", "rebind.attacker.example"),
        ("localhost:", "localhost"),
    ],
)
def test_host_header_names(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    "header",
    ["", "localhost:80a", "[::1", "[::1]x", "[localhost]:80", "local host", "a:b:c", ":8000"],
)
def test_malformed_host_headers_have_no_name(header: str) -> None:
    assert host_name(header) is None


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the guard let a refused request through")


async def _call(scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await HostGuardMiddleware(_unreachable, LOCAL)(scope, receive, send)
    return sent


def _scope(kind: str, path: str, host: bytes | None) -> dict[str, Any]:
    headers = [(b"host", host)] if host is not None else []
    return {"type": kind, "path": path, "headers": headers, "method": "GET"}


async def test_websocket_handshake_from_a_foreign_host_is_closed_unaccepted() -> None:
    sent = await _call(_scope("websocket", "/api/v1/anything", b"rebind.attacker.example"))
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert sent[0]["code"] == 1008


async def test_request_without_a_host_header_is_400() -> None:
    sent = await _call(_scope("http", "/api/v1/operators", None))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert sent[1]["body"] == b'{"detail":"a Host header is required"}'


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "function-after[functools.partial(<function max_length_validator at 0x7ff8a7aee7a0>,"
            " max_length=2000)]",
            "function-after[functools.partial(max_length_validator, max_length=2000)]",
        ),
        ("<api.models.Thing object at 0xDEADBEEF>", "api.models.Thing"),
        ("<bound method A.b of <A object at 0x1f>>", "<bound method A.b of A>"),
        ("plain text, at 0x nothing", "plain text, at 0x nothing"),
    ],
)
def test_object_reprs_are_reduced_to_names(text: str, shown: str) -> None:
    assert without_reprs(text) == shown


def test_a_nullable_fields_error_is_reported_once_at_the_field() -> None:
    tag = "function-after[functools.partial(<function max_length_validator at 0x7ff8>, x=1)]"
    errors = [
        {"type": "string_too_long", "loc": ("body", "description", tag), "msg": "too long"},
        {"type": "none_required", "loc": ("body", "description", "none"), "msg": "None"},
        {"type": "int_type", "loc": ("body", "max_wait_s"), "msg": "int"},
    ]
    assert public_errors(errors) == [
        {"type": "string_too_long", "loc": ["body", "description"], "msg": "too long"},
        {"type": "int_type", "loc": ["body", "max_wait_s"], "msg": "int"},
    ]

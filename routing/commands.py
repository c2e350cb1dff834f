"""Commands as the router sees them: a validated body plus its AMQP envelope."""

from dataclasses import dataclass

from schemas.messages import AcceptInteraction, CloseInteraction, CreateInteraction


@dataclass(frozen=True)
class Envelope:
    """The AMQP properties that travel with a command into its events."""

    message_id: str | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    # W3C trace context (valid or None: `messaging.tracing`); its events carry it on.
    traceparent: str | None = None
    tracestate: str | None = None


@dataclass(frozen=True)
class CreateRequest:
    key: int
    command: CreateInteraction
    envelope: Envelope = Envelope()


@dataclass(frozen=True)
class CloseRequest:
    key: int
    command: CloseInteraction
    envelope: Envelope = Envelope()


@dataclass(frozen=True)
class AcceptRequest:
    key: int
    command: AcceptInteraction
    envelope: Envelope = Envelope()


Request = CreateRequest | CloseRequest | AcceptRequest

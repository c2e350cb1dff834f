"""SQLAlchemy 2.0 typed models of the MVP spec's entities, plus the event outbox.

`Operator.current_load` is a counter kept in the same transaction as every status change, so
choosing an operator never counts rows of `interactions` (its cost does not grow with history).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.types import JSONDocument, StatusText, UTCDateTime, utcnow
from schemas.contacts import ContactKind
from schemas.events import InteractionStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATUSES = tuple(status.value for status in InteractionStatus)
CONTACT_KINDS = tuple(kind.value for kind in ContactKind)
WAITING_ONLY = text(f"status = '{InteractionStatus.WAITING.value}'")
OFFERED_ONLY = text(f"status = '{InteractionStatus.OFFERED.value}'")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # A lead's new interaction goes to the operator of its most recent one, when free.
    sticky: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Waiting longer than this gets one `interaction.overdue` event (None: no SLA).
    max_wait_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Set: interactions are offered, and an offer not accepted within this many seconds expires.
    accept_timeout_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Operator(Base):
    __tablename__ = "operators"
    __table_args__ = (
        CheckConstraint("load_limit >= 0", name="load_limit_non_negative"),
        CheckConstraint("current_load >= 0", name="current_load_non_negative"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    load_limit: Mapped[int] = mapped_column(Integer)
    current_load: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Lead(Base):
    """A person. Known by its contacts (`LeadContact`, each unique); `email`, `phone` and
    `handle` show its first contact of each kind, so events need no extra read."""

    __tablename__ = "leads"

    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    handle: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The `sequence` of its latest `lead.merged` event (0: none yet), so the next one is +1.
    last_sequence: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))

    interactions: Mapped[list["Interaction"]] = relationship(back_populates="lead", lazy="raise")
    contacts: Mapped[list["LeadContact"]] = relationship(
        lazy="raise", order_by="LeadContact.id", viewonly=True
    )


class LeadContact(Base):
    """One way to reach a lead; a (kind, value) belongs to exactly one lead."""

    __tablename__ = "lead_contacts"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_lead_contacts_kind"),
        CheckConstraint(f"kind IN {CONTACT_KINDS!r}", name="kind_known"),
        Index("ix_lead_contacts_lead_uuid", "lead_uuid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_uuid: Mapped[str] = mapped_column(ForeignKey("leads.uuid", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SourceOperatorSetting(Base):
    __tablename__ = "source_operator_settings"
    __table_args__ = (
        UniqueConstraint("source_id", "operator_id", name="uq_source_operator"),
        CheckConstraint("weight BETWEEN 1 AND 100", name="weight_range"),
        Index("ix_source_operator_settings_operator_id", "operator_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    weight: Mapped[int] = mapped_column(Integer)


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(f"status IN {STATUSES!r}", name="status_known"),
        # Draining: the waiting interactions of given sources by priority, then age, without
        # touching the rest.
        Index(
            "ix_interactions_waiting_source_id",
            "source_id",
            "priority",
            "id",
            sqlite_where=WAITING_ONLY,
            postgresql_where=WAITING_ONLY,
        ),
        # Expiring offers: the open ones by deadline, without touching the rest.
        Index(
            "ix_interactions_offered_expires_at",
            "offer_expires_at",
            sqlite_where=OFFERED_ONLY,
            postgresql_where=OFFERED_ONLY,
        ),
        Index("ix_interactions_operator_id_status", "operator_id", "status"),
        Index("ix_interactions_lead_uuid", "lead_uuid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lead_uuid: Mapped[str] = mapped_column(ForeignKey("leads.uuid"))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("operators.id", ondelete="SET NULL"), nullable=True
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    status: Mapped[InteractionStatus] = mapped_column(StatusText)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # When it was found waiting past its source's max_wait_s: set once, so one overdue event.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # While offered: when the offer expires unless the operator accepts it.
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    payload: Mapped[Any] = mapped_column(JSONDocument, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True, nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The `sequence` of its latest event: its first event (written with the row) is 1.
    last_sequence: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))

    lead: Mapped[Lead] = relationship(back_populates="interactions", lazy="raise")
    source: Mapped[Source] = relationship(lazy="raise")
    operator: Mapped[Operator | None] = relationship(lazy="raise")


class ExpiredOffer(Base):
    """An operator whose offer of this interaction expired: it is never offered to them again."""

    __tablename__ = "expired_offers"
    __table_args__ = (Index("ix_expired_offers_interaction_id", "interaction_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interactions.id", ondelete="CASCADE"))
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"))
    expired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxEvent(Base):
    """Events written in the same transaction as the change they report (transactional outbox).

    A row with `published_at` NULL has not been confirmed by the broker yet; the relay re-sends it
    with the same `event_id`, so a crash between commit and publish loses nothing. `owner` is
    the worker process that publishes it (`OutboxOwner`); other workers' relays leave it alone
    until that owner's lease has run out (NULL, the API's: after a lease's length).
    """

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index(
            "ix_outbox_events_unpublished",
            "id",
            sqlite_where=text("published_at IS NULL"),
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    interaction_id: Mapped[int] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), index=True
    )
    routing_key: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The W3C trace the event continues (the causing command's), so a re-send keeps it.
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(36), nullable=True)


class OutboxOwner(Base):
    """A worker process that publishes events, alive while `lease_until` is ahead.

    One row per process, renewed on a timer: the lease costs one UPDATE per worker, not one per
    event. A row missing or expired means its unconfirmed events are anyone's to re-send.
    """

    __tablename__ = "outbox_owners"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

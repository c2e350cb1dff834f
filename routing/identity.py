"""Which lead a batch's commands belong to: found by any contact, created, or merged. Pure.

Each contact (kind, value) belongs to exactly one lead. A command's contacts that match one
lead give that lead (its new contacts join it); matching none gives a new lead with all of
them; matching several merges them into the oldest, whose uuid survives. Commands of one batch
that share a contact are one person too, so the batch is resolved as connected groups
(union-find over commands, contacts and known leads), in command order.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from schemas.contacts import Contact, ContactKind

# The columns of `leads` that show its contacts, one per kind (the first it got).
SHOWN_CONTACTS = tuple(kind.value for kind in ContactKind)


@dataclass(frozen=True, slots=True)
class LeadContacts:
    """A lead's shown contacts: the first of each kind it got (what events and reads carry)."""

    email: str | None = None
    phone: str | None = None
    handle: str | None = None

    def filled_from(self, contacts: Iterable[Contact]) -> "LeadContacts":
        """The same, with each kind that is still empty taken from the first such contact."""
        shown = self
        for contact in contacts:
            if getattr(shown, contact.kind.value) is None:
                shown = replace(shown, **{contact.kind.value: contact.value})
        return shown

    def filled_from_lead(self, other: "LeadContacts") -> "LeadContacts":
        return self.filled_from(
            Contact(kind, value)
            for kind, value in (
                (ContactKind.EMAIL, other.email),
                (ContactKind.PHONE, other.phone),
                (ContactKind.HANDLE, other.handle),
            )
            if value is not None
        )


@dataclass(frozen=True, slots=True)
class KnownLead:
    """A stored lead, as read (and on PostgreSQL locked) before the batch decides."""

    uuid: str
    created_at: datetime
    shown: LeadContacts


@dataclass(frozen=True, slots=True)
class LeadMerge:
    survivor: str
    merged: tuple[str, ...]  # oldest first


Command = tuple[int, Sequence[Contact]]  # a command's key in the batch, and its contacts
Owners = Mapping[Contact, str]  # a stored contact -> the uuid of the lead it belongs to
Known = Mapping[str, "KnownLead"]  # uuid -> that stored lead


@dataclass
class LeadResolution:
    lead_of: dict[int, str] = field(default_factory=dict)  # command key -> lead uuid
    shown: dict[str, LeadContacts] = field(default_factory=dict)  # every lead the batch uses
    new_leads: list[str] = field(default_factory=list)
    changed_leads: list[str] = field(default_factory=list)  # existing, whose `shown` changed
    new_contacts: list[tuple[Contact, str]] = field(default_factory=list)
    merges: list[LeadMerge] = field(default_factory=list)


def resolve_leads(
    commands: Sequence[Command], owner: Owners, known: Known, new_uuid: Callable[[], str]
) -> LeadResolution:
    """`commands`: (key, contacts) in batch order; `owner`: stored contact -> lead uuid;
    `known`: those leads. Deterministic for a given input and `new_uuid`."""
    if all(len(contacts) == 1 for _, contacts in commands):
        return _resolve_single_contacts(commands, owner, known, new_uuid)
    return _resolve_groups(_union_find(commands, owner), owner, known, new_uuid)


def _resolve_groups(
    groups: Sequence[Sequence[Command]], owner: Owners, known: Known, new_uuid: Callable[[], str]
) -> LeadResolution:
    """Each group of connected commands is one lead: its stored leads merged into the oldest,
    or a new one."""
    resolution = LeadResolution()
    for group in groups:
        keys = [key for key, _ in group]
        contacts = _unique(c for _, cs in group for c in cs)
        leads = sorted(
            {owner[c] for c in contacts if c in owner},
            key=lambda u: (known[u].created_at, u),
        )
        if leads:
            survivor, merged = leads[0], tuple(leads[1:])
            before = known[survivor].shown
            shown = before
            for uuid in merged:
                shown = shown.filled_from_lead(known[uuid].shown)
            shown = shown.filled_from(c for c in contacts if c not in owner)
            if merged:
                resolution.merges.append(LeadMerge(survivor, merged))
            if shown != before:
                resolution.changed_leads.append(survivor)
        else:
            survivor = new_uuid()
            shown = LeadContacts().filled_from(contacts)
            resolution.new_leads.append(survivor)
        resolution.shown[survivor] = shown
        resolution.new_contacts.extend((c, survivor) for c in contacts if c not in owner)
        for key in keys:
            resolution.lead_of[key] = survivor
    return resolution


def _union_find(commands: Sequence[Command], owner: Owners) -> list[list[Command]]:
    """Commands, contacts and stored leads as nodes; a command joins its contacts, a stored
    contact joins its lead."""
    parent: dict[object, object] = {}

    def find(node: object) -> object:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def union(a: object, b: object) -> None:
        parent[find(a)] = find(b)

    for key, contacts in commands:
        for contact in contacts:
            union(("command", key), contact)
            if contact in owner:
                union(contact, ("lead", owner[contact]))
    groups: dict[object, list[Command]] = {}
    for command in commands:
        groups.setdefault(find(("command", command[0])), []).append(command)
    return list(groups.values())


def _resolve_single_contacts(
    commands: Sequence[Command], owner: Owners, known: Known, new_uuid: Callable[[], str]
) -> LeadResolution:
    """The common batch, each command with one contact: no command can join two leads, so
    each contact is its stored lead's, or a new lead's shared by the batch's commands that
    carry it. What the groups above give for such a batch, in the same order, without them
    (they were most of lead resolution's cost)."""
    resolution = LeadResolution()
    new_lead_of: dict[Contact, str] = {}
    for key, (contact,) in commands:
        lead = owner.get(contact) or new_lead_of.get(contact)
        if lead is None:
            lead = new_lead_of[contact] = new_uuid()
            resolution.new_leads.append(lead)
            resolution.shown[lead] = LeadContacts(**{contact.kind.value: contact.value})
            resolution.new_contacts.append((contact, lead))
        elif lead not in resolution.shown:
            resolution.shown[lead] = known[lead].shown
        resolution.lead_of[key] = lead
    return resolution


def _unique(contacts: Iterable[Contact]) -> list[Contact]:
    return list(dict.fromkeys(contacts))

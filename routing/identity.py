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


@dataclass
class LeadResolution:
    lead_of: dict[int, str] = field(default_factory=dict)  # command key -> lead uuid
    shown: dict[str, LeadContacts] = field(default_factory=dict)  # every lead the batch uses
    new_leads: list[str] = field(default_factory=list)
    changed_leads: list[str] = field(default_factory=list)  # existing, whose `shown` changed
    new_contacts: list[tuple[Contact, str]] = field(default_factory=list)
    merges: list[LeadMerge] = field(default_factory=list)


def resolve_leads(
    commands: Sequence[tuple[int, Sequence[Contact]]],
    owner: Mapping[Contact, str],
    known: Mapping[str, KnownLead],
    new_uuid: Callable[[], str],
) -> LeadResolution:
    """`commands`: (key, contacts) in batch order; `owner`: stored contact -> lead uuid;
    `known`: those leads. Deterministic for a given input and `new_uuid`."""
    groups = _connected(commands, owner)
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


def _connected(
    commands: Sequence[tuple[int, Sequence[Contact]]], owner: Mapping[Contact, str]
) -> list[list[tuple[int, Sequence[Contact]]]]:
    """Commands grouped by shared contacts or shared leads, groups in first-command order."""
    if all(len(contacts) == 1 for _, contacts in commands):
        return _by_single_contact(commands, owner)
    return _union_find(commands, owner)


def _union_find(
    commands: Sequence[tuple[int, Sequence[Contact]]], owner: Mapping[Contact, str]
) -> list[list[tuple[int, Sequence[Contact]]]]:
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
    groups: dict[object, list[tuple[int, Sequence[Contact]]]] = {}
    for command in commands:
        groups.setdefault(find(("command", command[0])), []).append(command)
    return list(groups.values())


def _by_single_contact(
    commands: Sequence[tuple[int, Sequence[Contact]]], owner: Mapping[Contact, str]
) -> list[list[tuple[int, Sequence[Contact]]]]:
    """The common batch, each command with one contact: no command can join two leads, so a
    group is the commands of one stored lead, or of one new contact. What the union-find
    gives for such a batch, without it (it was most of lead resolution's cost)."""
    groups: dict[object, list[tuple[int, Sequence[Contact]]]] = {}
    for command in commands:
        contact = command[1][0]
        lead = owner.get(contact)
        groups.setdefault(contact if lead is None else ("lead", lead), []).append(command)
    return list(groups.values())


def _unique(contacts: Iterable[Contact]) -> list[Contact]:
    return list(dict.fromkeys(contacts))

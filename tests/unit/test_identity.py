"""Lead identity decided as a pure function: found, created, extended, merged into the oldest."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count
from random import Random

from routing.identity import (
    KnownLead,
    LeadContacts,
    LeadMerge,
    _resolve_groups,
    _resolve_single_contacts,
    _union_find,
    resolve_leads,
)
from schemas.contacts import Contact, ContactKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def email(value: str) -> Contact:
    return Contact(ContactKind.EMAIL, value)


def phone(value: str) -> Contact:
    return Contact(ContactKind.PHONE, value)


def handle(value: str) -> Contact:
    return Contact(ContactKind.HANDLE, value)


def uuids() -> Callable[[], str]:
    numbers = count(1)
    return lambda: f"new-{next(numbers)}"


def lead(uuid: str, age_days: int, **shown: str) -> KnownLead:
    return KnownLead(uuid, T0 - timedelta(days=age_days), LeadContacts(**shown))


def test_no_match_makes_one_new_lead_with_all_contacts() -> None:
    r = resolve_leads([(0, [phone("+79991234567"), handle("tg:1")])], {}, {}, uuids())
    assert r.lead_of == {0: "new-1"} and r.new_leads == ["new-1"]
    assert r.shown["new-1"] == LeadContacts(phone="+79991234567", handle="tg:1")
    assert r.new_contacts == [(phone("+79991234567"), "new-1"), (handle("tg:1"), "new-1")]
    assert r.merges == []


def test_one_match_gives_that_lead_and_attaches_new_contacts() -> None:
    known = {"A": lead("A", 3, email="a@example.com")}
    r = resolve_leads(
        [(0, [email("a@example.com"), phone("+4930123456")])],
        {email("a@example.com"): "A"},
        known,
        uuids(),
    )
    assert r.lead_of == {0: "A"} and r.new_leads == []
    assert r.new_contacts == [(phone("+4930123456"), "A")]
    assert r.shown["A"] == LeadContacts(email="a@example.com", phone="+4930123456")
    assert r.changed_leads == ["A"]


def test_several_matches_merge_into_the_oldest() -> None:
    known = {
        "young": lead("young", 1, handle="tg:9"),
        "old": lead("old", 10, email="a@example.com"),
        "middle": lead("middle", 5, phone="+4930123456"),
    }
    owner = {email("a@example.com"): "old", handle("tg:9"): "young", phone("+4930123456"): "middle"}
    r = resolve_leads(
        [(0, [handle("tg:9"), email("a@example.com"), phone("+4930123456")])], owner, known, uuids()
    )
    assert r.lead_of == {0: "old"}
    assert r.merges == [LeadMerge("old", ("middle", "young"))]
    assert r.shown["old"] == LeadContacts("a@example.com", "+4930123456", "tg:9")
    assert r.new_contacts == [] and r.new_leads == []


def test_commands_of_one_batch_sharing_a_contact_are_one_person() -> None:
    r = resolve_leads(
        [
            (0, [phone("+1")]),
            (1, [email("x@example.com")]),
            (2, [email("x@example.com"), phone("+1")]),
        ],
        {},
        {},
        uuids(),
    )
    assert r.lead_of == {0: "new-1", 1: "new-1", 2: "new-1"}
    assert r.new_leads == ["new-1"]
    assert sorted(c.value for c, _ in r.new_contacts) == ["+1", "x@example.com"]


def test_a_batch_command_can_join_two_stored_leads_for_a_later_command() -> None:
    known = {"A": lead("A", 2, email="a@example.com"), "B": lead("B", 1, phone="+2")}
    owner = {email("a@example.com"): "A", phone("+2"): "B"}
    r = resolve_leads(
        [(0, [phone("+2")]), (1, [email("a@example.com"), phone("+2")])], owner, known, uuids()
    )
    assert r.lead_of == {0: "A", 1: "A"}
    assert r.merges == [LeadMerge("A", ("B",))]


def test_unrelated_commands_stay_apart_and_in_order() -> None:
    r = resolve_leads(
        [
            (0, [email("a@example.com")]),
            (1, [email("b@example.com")]),
            (2, [email("a@example.com")]),
        ],
        {},
        {},
        uuids(),
    )
    assert r.lead_of == {0: "new-1", 1: "new-2", 2: "new-1"}


def test_one_contact_per_command_resolves_as_the_general_path_does() -> None:
    """The fast path (each command one contact) and the general one (union-find groups) agree
    on every field, on seeded batches mixing stored and new contacts of every
    kind, repeated contacts and contacts of one stored lead."""
    rng = Random(14)
    for _ in range(200):
        contacts = [email(f"p{n}@example.com") for n in range(8)] + [
            phone(f"+{n}") for n in range(4)
        ]
        owner = {c: f"lead-{rng.randrange(4)}" for c in contacts if rng.random() < 0.5}
        known = {
            u: KnownLead(u, datetime(2026, 1, 1 + n, tzinfo=UTC), LeadContacts(email=f"{u}@x"))
            for n, u in enumerate(sorted(set(owner.values())))
        }
        commands = [(key, [rng.choice(contacts)]) for key in range(rng.randrange(1, 30))]
        fast = _resolve_single_contacts(commands, owner, known, uuids())
        general = _resolve_groups(_union_find(commands, owner), owner, known, uuids())
        assert fast == general  # the lists (what is written, in order) and the dicts

"""The docs against the code: every setting, command, queue, exchange, event type and reason
the code has is named in README.md or docs/*.md, and every relative link there resolves.

The lists come from the code itself (the Settings model, the CLI's parser, the topology's
constants, the event enums), so a setting or command added without its documentation fails
here, and the README cannot quietly drift from what the service does.
"""

import argparse
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest

import messaging.topology as topology
from cli.main import build_parser
from schemas.events import AssignReason, EventType
from schemas.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 300
TEST_COMMAND = (
    "AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ "
    "TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/pytest"
)


NOT_BUILT = "not built yet"


def _units(text: str) -> list[tuple[bool, str]]:
    """(is code, text): paragraphs of prose, and each line of a fenced block on its own."""
    units: list[tuple[bool, str]] = []
    for part in re.split(r"^(```[^\n]*\n.*?^```)", text, flags=re.MULTILINE | re.DOTALL):
        if part.startswith("```"):
            units.extend((True, line.strip()) for line in part.splitlines()[1:-1])
        else:
            units.extend((False, p) for p in re.split(r"\n\s*\n", part) if p.strip())
    return units


def _spans(is_code: bool, unit: str) -> list[str]:
    return [unit] if is_code else re.findall(r"`([^`\n]+)`", unit)


@cache
def _docs() -> tuple[str, frozenset[str], frozenset[str]]:
    """The documented text and its code spans, and the code spans of what the docs say is
    not built yet: a paragraph (or a fenced line) that says so, or a section whose heading
    does. Those mentions do not count as documentation."""
    text: list[str] = []
    documented: set[str] = set()
    not_built: set[str] = set()
    for path in DOC_FILES:
        section_level = 0  # > 0 inside a "not built yet" section of that heading level
        for is_code, unit in _units(path.read_text(encoding="utf-8")):
            heading = None if is_code else re.match(r"(#{1,6}) ", unit)
            if heading:
                level = len(heading.group(1))
                if section_level and level <= section_level:
                    section_level = 0
                if NOT_BUILT in unit.lower():
                    section_level = level
            if section_level or NOT_BUILT in " ".join(unit.split()).lower():
                not_built.update(_spans(is_code, unit))
            else:
                text.append(unit)
                documented.update(_spans(is_code, unit))
    return "\n".join(text), frozenset(documented), frozenset(not_built)


def _named(name: str, spans: frozenset[str]) -> bool:
    """Named as code (`NAME`), alone or within a longer span such as `NAME=value`."""
    pattern = re.compile(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])")
    return any(pattern.search(span) for span in spans)


def _documented(name: str) -> bool:
    return _named(name, _docs()[1])


def setting_names() -> list[str]:
    """The environment variables the Settings model reads (case-insensitive: upper in docs)."""
    return sorted(name.upper() for name in Settings.model_fields)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_commands() -> list[str]:
    """`leadrouter worker`, `leadrouter db upgrade`, ...: every leaf of the parser's tree."""
    found: list[str] = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        children = _subparsers(parser)
        if not children:
            found.append(prefix)
        for name, child in children.items():
            walk(f"{prefix} {name}", child)

    walk("leadrouter", build_parser())
    return sorted(found)


def cli_options() -> list[tuple[str, str]]:
    """(command, long option) for every option of every command, `--help` aside."""
    found: list[tuple[str, str]] = []

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    found.append((prefix, option))
        for name, child in _subparsers(parser).items():
            walk(f"{prefix} {name}", child)

    walk("leadrouter", build_parser())
    return sorted(found)


def topology_names() -> list[str]:
    """Every exchange and queue the worker declares, from `messaging/topology.py`'s constants."""
    return sorted(
        value
        for name, value in vars(topology).items()
        if isinstance(value, str) and name.endswith(("_EXCHANGE", "_QUEUE"))
    )


def test_the_lists_come_from_the_code_and_are_not_empty() -> None:
    """Guards the guards: a renamed attribute must not make every check below vacuous."""
    assert {"AMQP_URL", "DATABASE_URL", "BATCH_SIZE"} <= set(setting_names())
    assert {"leadrouter worker", "leadrouter db upgrade", "leadrouter dlq replay"} <= set(
        cli_commands()
    )
    assert ("leadrouter worker", "--metrics-host") in cli_options()
    assert {"interactions", "interactions.create", "interactions.dead"} <= set(topology_names())
    assert "interaction.assigned" in {event.value for event in EventType}


@pytest.mark.parametrize("name", setting_names())
def test_every_setting_is_documented(name: str) -> None:
    assert _documented(name), f"setting {name} (schemas/settings.py) is in no README/docs table"


@pytest.mark.parametrize("command", cli_commands())
def test_every_command_is_documented(command: str) -> None:
    assert command in _docs()[0], f"`{command}` (cli/main.py) is not in README.md or docs/"


@pytest.mark.parametrize(("command", "option"), cli_options())
def test_every_command_option_is_documented(command: str, option: str) -> None:
    assert _documented(option), f"{command} {option} (cli/main.py) is not documented"


@pytest.mark.parametrize("name", topology_names())
def test_every_queue_and_exchange_is_documented(name: str) -> None:
    assert _documented(name), f"{name} (messaging/topology.py) is not documented"


@pytest.mark.parametrize("event_type", [event.value for event in EventType])
def test_every_event_type_is_documented(event_type: str) -> None:
    assert _documented(event_type), f"event type {event_type} (schemas/events.py) is undocumented"


@pytest.mark.parametrize("reason", [reason.value for reason in AssignReason])
def test_every_assignment_reason_is_documented(reason: str) -> None:
    assert _documented(reason), f"reason {reason} (schemas/events.py) is not documented"


def _every_name_in_the_code() -> list[str]:
    return [
        *setting_names(),
        *cli_commands(),
        *(option for _, option in cli_options()),
        *topology_names(),
        *(event.value for event in EventType),
        *(reason.value for reason in AssignReason),
    ]


@pytest.mark.parametrize("name", sorted(set(_every_name_in_the_code())))
def test_nothing_the_code_has_is_listed_as_not_built(name: str) -> None:
    """When a feature of the contract lands, its "not built yet" note must go."""
    assert not _named(name, _docs()[2]), f"{name} exists in the code; the docs say not built yet"


def test_readme_is_short_and_gives_the_command_ci_runs() -> None:
    readme = README.read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    assert TEST_COMMAND in readme.splitlines()
    assert TEST_COMMAND in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    """A section moved between README and docs/ must not leave a link to where it was."""
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(target)
            continue
        if anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(target)
    assert not broken, f"{path.name}: broken links {broken}"

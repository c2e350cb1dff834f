"""`--help` works for every command and subcommand, without settings or services."""

import argparse
import asyncio
import os

import pytest

from cli.main import build_parser
from tests.ops.conftest import LEADROUTER


def command_paths(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


ALL_COMMANDS = command_paths(build_parser())


def test_every_command_is_covered() -> None:
    expected = {
        ("worker",),
        ("api",),
        ("db", "upgrade"),
        ("demo",),
        ("dlq", "list"),
        ("dlq", "replay"),
    }
    assert expected <= set(ALL_COMMANDS)


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "leadrouter")
def test_help_exits_zero(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*path, "--help"])

    assert exited.value.code == 0
    assert "usage: leadrouter" in capsys.readouterr().out


async def test_installed_entry_point_help_ignores_bad_settings() -> None:
    env = {**os.environ, "AMQP_URL": "http://wrong", "METRICS_PORT": "not-a-port"}
    process = await asyncio.create_subprocess_exec(
        LEADROUTER, "dlq", "replay", "--help", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()

    assert process.returncode == 0
    assert b"--yes" in out and b"--limit" in out

"""Every command that connects ends a refused first connection in one line and its own exit code.

Real services: "down" is a port nothing listens on, the vhost and the password are refused by
the real broker, the database and the user by the real PostgreSQL (TEST_POSTGRES_URL).
"""

import asyncio
import os
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from yarl import URL

from cli.startup_errors import ExitCode
from tests.ops.conftest import LEADROUTER, CliResult, free_port

SECRET = "s3cret-pw"


async def run(*args: str, amqp_url: str, database_url: str, cwd: Path) -> CliResult:
    env = {**os.environ, "AMQP_URL": amqp_url, "DATABASE_URL": database_url, "LOG_FORMAT": "json"}
    process = await asyncio.create_subprocess_exec(
        LEADROUTER,
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return CliResult(process.returncode, out.decode(), err.decode())


def one_line(result: CliResult, command: str) -> str:
    """The command's own line, alone on stderr (Alembic's INFO lines aside: quieted elsewhere)."""
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and '"logger":"alembic' not in line
    ]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"leadrouter {command}: "), lines[0]
    assert SECRET not in result.stderr + result.stdout
    return lines[0]


def broker(amqp_url: str, *, port: int | None = None, vhost: str | None = None) -> str:
    url = URL(amqp_url).with_password(SECRET if port else URL(amqp_url).password)
    if port is not None:
        url = url.with_port(port)
    if vhost is not None:
        url = url.with_path("/" + vhost)
    return str(url)


BROKER_COMMANDS = [("worker",), ("dlq", "list"), ("demo", "-n", "1")]


@pytest.mark.parametrize("command", BROKER_COMMANDS, ids=lambda c: c[0])
async def test_broker_down(
    command: tuple[str, ...], amqp_session_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    port = free_port()
    result = await run(
        *command,
        amqp_url=broker(amqp_session_url, port=port),
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    line = one_line(result, command[0])
    assert result.code == ExitCode.BROKER_DOWN
    assert f"no node in AMQP_URL answered (127.0.0.1:{port}: connection refused)" in line
    assert "start RabbitMQ or fix AMQP_URL" in line
    assert f"amqp://guest:***@127.0.0.1:{port}/" in line


@pytest.mark.parametrize("command", BROKER_COMMANDS, ids=lambda c: c[0])
async def test_broker_vhost_missing(
    command: tuple[str, ...], amqp_session_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    vhost = "no-such-vhost-for-leadrouter"
    result = await run(
        *command,
        amqp_url=broker(amqp_session_url, vhost=vhost),
        database_url=sqlite_url,
        cwd=tmp_path,
    )
    line = one_line(result, command[0])
    assert result.code == ExitCode.BROKER_VHOST
    assert f"vhost '{vhost}' refused" in line
    assert f"rabbitmqctl add_vhost {vhost}" in line


@pytest.mark.parametrize("command", BROKER_COMMANDS, ids=lambda c: c[0])
async def test_broker_wrong_password(
    command: tuple[str, ...], amqp_session_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    wrong = str(URL(amqp_session_url).with_password(SECRET))
    result = await run(*command, amqp_url=wrong, database_url=sqlite_url, cwd=tmp_path)
    line = one_line(result, command[0])
    assert result.code == ExitCode.BROKER_LOGIN
    assert "RabbitMQ refused the login" in line
    assert "fix the user name or password in AMQP_URL" in line
    assert ":***@" in line


DATABASE_COMMANDS = [("worker",), ("api", "--port", "0"), ("db", "upgrade"), ("demo", "-n", "1")]


@pytest.fixture
def postgres_server(postgres_admin_url: str | None) -> str:
    if postgres_admin_url is None:
        pytest.skip("needs TEST_POSTGRES_URL")
    return postgres_admin_url


def command_name(command: tuple[str, ...]) -> str:
    return "db upgrade" if command[0] == "db" else command[0]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: c[0])
async def test_database_missing(
    command: tuple[str, ...], amqp_session_url: str, postgres_server: str, tmp_path: Path
) -> None:
    url = make_url(postgres_server).set(database="leadrouter_no_such_db", password=SECRET)
    database_url = url.render_as_string(hide_password=False)
    result = await run(*command, amqp_url=amqp_session_url, database_url=database_url, cwd=tmp_path)
    line = one_line(result, command_name(command))
    assert result.code == ExitCode.DATABASE_MISSING
    assert (
        f"PostgreSQL at {url.host}:{url.port or 5432} has no database 'leadrouter_no_such_db'"
        in line
    )
    assert "createdb leadrouter_no_such_db" in line


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: c[0])
async def test_database_login_refused(
    command: tuple[str, ...], amqp_session_url: str, postgres_server: str, tmp_path: Path
) -> None:
    url = make_url(postgres_server).set(username="leadrouter_no_such_user", password=SECRET)
    database_url = url.render_as_string(hide_password=False)
    result = await run(*command, amqp_url=amqp_session_url, database_url=database_url, cwd=tmp_path)
    line = one_line(result, command_name(command))
    assert result.code == ExitCode.DATABASE_LOGIN
    assert "refused the login of user 'leadrouter_no_such_user'" in line
    assert re.search(r"postgresql\+asyncpg://leadrouter_no_such_user:\*\*\*@", line)


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=lambda c: c[0])
async def test_database_down(
    command: tuple[str, ...], amqp_session_url: str, postgres_server: str, tmp_path: Path
) -> None:
    port = free_port()
    url = make_url(postgres_server).set(host="127.0.0.1", port=port, password=SECRET)
    database_url = url.render_as_string(hide_password=False)
    result = await run(*command, amqp_url=amqp_session_url, database_url=database_url, cwd=tmp_path)
    line = one_line(result, command_name(command))
    assert result.code == ExitCode.DATABASE_DOWN
    assert f"PostgreSQL at 127.0.0.1:{port} did not answer (connection refused)" in line


async def test_api_serves_without_the_broker_and_says_why_once(
    amqp_session_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    """The API starts without RabbitMQ (its /health says so); its log says why, in one line."""
    env = {
        **os.environ,
        "AMQP_URL": broker(amqp_session_url, vhost="no-such-vhost-for-leadrouter"),
        "DATABASE_URL": sqlite_url,
        "LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        LEADROUTER,
        "api",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"broker unavailable" not in (line := await process.stderr.readline()):
                assert line, "the API ended"
    finally:
        process.terminate()
        await process.wait()
    text = line.decode()
    assert "retries every 2 s" in text
    assert "vhost 'no-such-vhost-for-leadrouter' refused" in text

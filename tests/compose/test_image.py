"""The project image as built by `docker-compose build` from the real Dockerfile: its size, its
user, no secret in any layer or in its environment, and a build context without the virtualenv,
databases, tests or local secrets (.dockerignore, read the way docker-compose reads it)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from docker.utils.build import exclude_paths

from tests.compose.conftest import Measure
from tests.compose.runtime import ROOT
from tests.compose.stack import ComposeStack, podman

pytestmark = pytest.mark.compose

SECRET_NAMES = ("PASSWORD", "PASS", "TOKEN", "SECRET", "COOKIE", "KEY")
NEVER_IN_CONTEXT = (".venv", "tests", ".git", ".env")  # folders and files, at the top


def context_files(root: Path) -> set[str]:
    """The files docker-compose 1.29 sends as the build context (docker-py's own filter)."""
    patterns = [
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return set(exclude_paths(str(root), patterns, dockerfile="Dockerfile"))


def test_image_size_and_user(stack: ComposeStack, measure: Measure) -> None:
    [image] = json.loads(podman("image", "inspect", stack.image))
    measure("image_size_mb", round(int(image["Size"]) / 1e6, 1))
    measure("image_layers", len(image["RootFS"]["Layers"]))
    assert image["Config"]["User"] == "leadrouter", image["Config"]
    uid = podman("run", "--rm", "--network", "none", "--entrypoint", "id", stack.image, "-u")
    assert uid.strip() == "10001", uid  # the Dockerfile's unprivileged user
    entrypoint = image["Config"]["Entrypoint"]
    assert entrypoint == ["leadrouter"], entrypoint


def test_no_secret_in_layers_or_env(stack: ComposeStack) -> None:
    """Neither this run's secrets nor any secret-looking variable is part of the image; the
    image's files hold no .env, database or git history."""
    iid = stack.image
    [image] = json.loads(podman("image", "inspect", iid))
    env = image["Config"]["Env"]
    named = [e for e in env if any(word in e.split("=")[0].upper() for word in SECRET_NAMES)]
    assert not named, named
    history = podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", iid)
    secrets = [v for k, v in stack.env.items() if k.endswith(("PASSWORD", "TOKEN", "COOKIE"))]
    for text in (history, "\n".join(env)):
        assert not [s for s in secrets if s in text], "a run's secret is in the image"
        assert "amqp://" not in text and "postgresql" not in text, text
    mounted = Path(podman("image", "mount", iid).strip())
    try:
        found = [
            str(path.relative_to(mounted))
            for folder in ("src", "home/leadrouter", "usr/local/lib")
            for path in (mounted / folder).rglob("*")
            if path.name == ".env" or path.suffix in (".db", ".db-wal") or path.name == ".git"
        ]
    finally:
        podman("image", "unmount", iid)
    assert not found, found


def test_build_context_leaves_out_venv_databases_tests(tmp_path: Path, measure: Measure) -> None:
    """(Needs no container runtime: docker-compose filters the context before sending it.)"""
    # The repository as it is (it has a .venv and tests/): what the build really gets.
    sent = context_files(ROOT)
    assert (ROOT / "tests").is_dir()
    leaked = sorted(
        p
        for p in sent
        if p.split("/")[0] in NEVER_IN_CONTEXT
        or (p.startswith(".env.") and p != ".env.example")
        or p.endswith((".db", ".db-wal", ".db-shm"))
    )
    assert not leaked, leaked[:10]
    measure("build_context_files", len(sent))
    measure("build_context_kb", round(sum(os.path.getsize(ROOT / p) for p in sent) / 1024, 1))
    # A tree that has every kind of file that must stay out, next to two that must go in.
    shutil.copy(ROOT / ".dockerignore", tmp_path / ".dockerignore")
    for name in (
        ".venv/bin/python", "tests/test_x.py", "leadrouter.db", "leadrouter.db-wal",
        "api/leadrouter.db", ".env", ".env.production", ".git/HEAD", "bench/results/r.json",
        "api/app.py", ".env.example",
    ):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert context_files(tmp_path) == {
        ".dockerignore",
        ".env.example",
        "api",
        "api/app.py",
        "bench",
    }

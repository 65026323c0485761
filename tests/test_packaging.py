"""What the Docker image gets: the wheel built from exactly the files the Dockerfile copies carries
everything `serve` and `demo` read at run time, and works installed, away from the checkout. Docker
itself does not run here, so the Dockerfile's promises (non-root, health check, no baked-in secrets)
are checked as text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.paths import ROOT

DOCKERFILE = (ROOT / "Dockerfile").read_text("utf-8")
# Read at run time from the installed package, not from the checkout.
PACKAGE_DATA = (
    "bot/platforms/console_page/index.html",
    "bot/platforms/console_page/console.js",
    "bot/platforms/console_page/console.css",
    "bot/platforms/console_page/slack_preview.js",
    "bot/preview/page.js",
    "bot/fakegraph/sample_tenant.json",
    "bot/fakegraph/sample_errors.json",
    "handlers/catalog/aadsts.toml",
)


def _copied() -> set[str]:
    """What the build stage copies into the image: the `COPY <src> <dest>` lines without --from."""
    sources: set[str] = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            sources.update(line.split()[1:-1])
    return sources


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("context")
    for name in _copied():
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, context / name)
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", out, "."],
        cwd=context,
        check=True,
        timeout=300,
    )
    (built,) = out.glob("secretbot-*.whl")
    return built


def test_the_build_context_is_what_dockerignore_lets_through() -> None:
    allowed = {
        line.strip("!/") for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines() if line.startswith("!")
    }
    assert _copied() == allowed == {"pyproject.toml", "README.md", "bot", "handlers", "cards"}


def test_the_wheel_carries_the_files_read_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in PACKAGE_DATA if name not in names]
    assert missing == []
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "secretbot = bot.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "node_modules/"))]


def test_the_installed_wheel_diagnoses_on_the_sample_tenant_away_from_the_checkout(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
        check=True,
        timeout=120,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import bot, sys; assert bot.__file__.startswith(sys.argv[1]), bot.__file__; "
            "from bot.cli import main; sys.exit(main(sys.argv[2:]))",
            str(target),
            "diagnose",
            "--snapshot",
            "sample",
            "--format",
            "json",
            "a1b2c3d4-1111-2222-3333-444455556666",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert '"display_name": "orders-api"' in result.stdout


def test_the_image_runs_serve_as_a_non_root_user_with_a_health_check() -> None:
    assert len(re.findall(r"^FROM ", DOCKERFILE, re.MULTILINE)) == 2  # build stage, then runtime
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in ("0", "root")
    assert re.search(r'^CMD \["secretbot", "serve"\]$', DOCKERFILE, re.MULTILINE)
    health = re.search(r"^HEALTHCHECK .*?(?=^\S)", DOCKERFILE, re.MULTILINE | re.DOTALL)
    assert health and "/healthz" in health.group(0)


def test_no_secret_is_baked_into_the_image() -> None:
    settings = re.findall(r"^(?:ENV|ARG)\b.*(?:\n\s+.*)*", DOCKERFILE, re.MULTILINE)
    names = re.findall(r"([A-Z_][A-Z0-9_]*)=", "\n".join(settings))
    assert names and not [n for n in names if re.search(r"SECRET|TOKEN|PASSWORD|KEY|CLIENTID", n)]

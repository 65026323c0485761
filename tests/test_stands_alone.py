"""The project stands alone: nothing in it reads or points at a folder beside the checkout."""

from __future__ import annotations

import re
import subprocess

from tests.paths import ROOT

# The sibling folder's name is assembled so this file does not match its own pattern.
SIBLING = "sha" + "red"
# `../<sibling>` in any text, or a path built as `.parents[2] / "<sibling>"` / `ROOT.parent / "<sibling>"`.
OUTSIDE = re.compile(rf"\.\./{SIBLING}\b|parents\[\d+\]\s*/\s*[\"']{SIBLING}[\"']|\.parent\s*/\s*[\"']{SIBLING}[\"']")


def _project_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [name for name in listed.stdout.splitlines() if (ROOT / name).is_file()]


def test_no_file_refers_to_a_folder_outside_the_project() -> None:
    offenders = []
    for name in _project_files():
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # pictures and other binary files
        offenders += [f"{name}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert offenders == []


def test_the_pattern_catches_each_way_of_pointing_outside() -> None:
    for text in (
        f"see ../{SIBLING}/corpus",
        f'Path(__file__).resolve().parents[2] / "{SIBLING}" / "corpus"',
        f'ROOT.parent / "{SIBLING}"',
    ):
        assert OUTSIDE.search(text), text
    assert not OUTSIDE.search("a shared Redis, shared state")

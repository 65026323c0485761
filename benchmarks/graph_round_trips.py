"""Graph round trips and wall time per sample error: the one-`$batch` `GraphDirectory` against a naive
`Directory` that makes one msgraph-sdk call per fact.

Both variants talk to the same local `FakeGraph` (sample tenant, 100 ms injected per HTTP request by
default) through the real msgraph-sdk, in the same process and run, interleaved sample by sample.
A figure-printing script, not a test: nothing here asserts a timing. It exits 1 only when the two
variants disagree (another primary cause, other findings or evidence, or a round-trip count that
is not what the server saw), because then the comparison would not be fair.

    .venv/bin/python benchmarks/graph_round_trips.py [--repeats 3] [--latency 0.1] [--sequential]

The naive variant sends the calls that do not depend on each other together (asyncio.gather) by
default: that is the strongest non-batch competitor, and it keeps the run at about half a minute.
`--sequential` awaits every call in turn instead (the plainest code; about a minute at 100 ms).
Round trips are the same either way; only the wall time changes.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

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
    Activity,
    Application,
    AppLookup,
    DirectoryUnavailable,
    FederatedCredential,
    GraphMode,
    Owner,
    PermissionDenied,
    ServicePrincipal,
    Tenant,
    Throttled,
)
from bot.fakegraph import FakeGraph, LocalTokenCredential, load_snapshot, sample_snapshot_path
from bot.fakegraph.samples import SampleError, sample_errors, sample_reference_time
from bot.graph import GraphDirectory, build_graph_client, mapping
from bot.ports import Directory
from handlers.diagnose import diagnose

READ_PERMISSION = "Application.Read.All"
AUDIT_PERMISSION = "AuditLog.Read.All"
# The same $select lists as GraphDirectory, so both variants ask Graph for the same data.
APP_FIELDS = "id,appId,displayName,signInAudience,passwordCredentials,keyCredentials,deletedDateTime"
SP_FIELDS = "id,appId,displayName,accountEnabled,appOwnerOrganizationId"
OWNER_FIELDS = "id,displayName,userPrincipalName,mail"
ORG_FIELDS = "id,verifiedDomains"
BATCHED, NAIVE = "batched", "naive"
_FILTER_SAFE = "'(),:/"  # left as they are in a $filter; spaces and the rest are percent-encoded


# --- the naive variant -----------------------------------------------------------------------------


class NaiveDirectory:
    """`bot.ports.Directory` with one msgraph-sdk request-builder call per fact (no `$batch`).

    `concurrent=True` sends the calls that do not depend on each other together (asyncio.gather);
    otherwise each call is awaited in turn.
    Owners and federated credentials are read by object id, which only the application call gives.
    """

    def __init__(self, client: GraphServiceClient, mode: GraphMode = GraphMode.SNAPSHOT, *, concurrent: bool = False):
        self._client = client
        self._mode = mode
        self._concurrent = concurrent

    @property
    def mode(self) -> GraphMode:
        return self._mode

    async def lookup(self, app_id: str) -> AppLookup:
        c = self._client
        app, sp, deleted, org = await self._all(
            lambda: c.applications_with_app_id(app_id).get(_config(ApplicationsWithAppIdRequestBuilder, APP_FIELDS)),
            lambda: c.service_principals_with_app_id(app_id).get(
                _config(ServicePrincipalsWithAppIdRequestBuilder, SP_FIELDS)
            ),
            lambda: c.directory.deleted_items.graph_application.get(
                _config(GraphApplicationRequestBuilder, APP_FIELDS, filter=f"appId eq '{app_id}'")
            ),
            lambda: c.organization.get(_config(OrganizationRequestBuilder, ORG_FIELDS)),
        )
        for part in (app, sp):
            if part.status == 403:
                raise PermissionDenied(READ_PERMISSION, "reading app registrations")
        answers = [app, sp, deleted, org]
        application = None
        if app.body is not None:
            item = c.applications.by_application_id(app.body.id)
            owners, federated = await self._all(
                lambda: item.owners.get(_config(OwnersRequestBuilder, OWNER_FIELDS)),
                lambda: item.federated_identity_credentials.get(_config(FederatedIdentityCredentialsRequestBuilder)),
            )
            answers += [owners, federated]
            application = _application(app.body, _items(owners), _items(federated))
        deleted_apps, orgs = _items(deleted), _items(org)
        return AppLookup(
            app_id=app_id,
            application=application,
            service_principal=_service_principal(sp.body) if sp.body is not None else None,
            deleted_application=_application(deleted_apps[0]) if deleted_apps else None,
            tenant=_tenant(orgs[0]) if orgs else None,
            missing_permissions=(READ_PERMISSION,) if any(a.status == 403 for a in answers) else (),
            round_trips=len(answers),
        )

    async def activity(
        self, app_id: str, object_id: str | None, *, correlation_id: str | None, since: datetime
    ) -> Activity:
        stamp = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        service_principal = "signInEventTypes/any(t: t eq 'servicePrincipal')"
        if correlation_id:
            sign_in_filter = f"correlationId eq '{correlation_id}' and {service_principal}"
        else:
            sign_in_filter = f"appId eq '{app_id}' and createdDateTime ge {stamp} and {service_principal}"
        # Service-principal sign-ins are beta-only: the v1.0 builders are pointed at /beta with with_url.
        logs = self._client.audit_logs
        sign_ins_url = self._beta("auditLogs/signIns", sign_in_filter, 50)
        calls: list[Callable[[], Awaitable[Any]]] = [lambda: logs.sign_ins.with_url(sign_ins_url).get()]
        if object_id:
            audit_filter = f"activityDateTime ge {stamp} and targetResources/any(t: t/id eq '{object_id}')"
            audits_url = self._beta("auditLogs/directoryAudits", audit_filter, 20)
            calls.append(lambda: logs.directory_audits.with_url(audits_url).get())
        answers = await self._all(*calls)
        audits = answers[1] if len(answers) > 1 else _Answer(200, None)
        # Sign-ins and audits: bot.graph.mapping reads these as plain JSON (beta fields), so hand it JSON.
        return Activity(
            sign_ins=tuple(mapping.sign_in(_json(s)) for s in _items(answers[0])),
            audits=tuple(mapping.audit_entry(_json(a)) for a in _items(audits)),
            missing_permissions=(AUDIT_PERMISSION,) if any(a.status in (401, 403) for a in answers) else (),
            round_trips=len(answers),
        )

    async def _all(self, *calls: Callable[[], Awaitable[Any]]) -> list[_Answer]:
        """Run SDK calls one after another (or together with `concurrent`), each answer wrapped."""
        if self._concurrent:
            return list(await asyncio.gather(*(_call(get) for get in calls)))
        return [await _call(get) for get in calls]

    def _beta(self, path: str, odata_filter: str, top: int) -> str:
        root = self._client.request_adapter.base_url.rstrip("/").rsplit("/", 1)[0]
        return f"{root}/beta/{path}?$filter={quote(odata_filter, safe=_FILTER_SAFE)}&$top={top}"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any  # an msgraph-sdk model, or None when Graph answered with an error


async def _call(get: Callable[[], Awaitable[Any]]) -> _Answer:
    """One SDK call; 404 and 401/403 become an empty answer, throttling and outages raise as in GraphDirectory."""
    try:
        return _Answer(200, await get())
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


def _config(builder: type, select: str = "", **options: Any) -> RequestConfiguration[Any]:
    """A RequestConfiguration with the builder's own generated query-parameter class."""
    name = f"{builder.__name__}GetQueryParameters"
    params = getattr(builder, name)(select=select.split(",") if select else None, **options)
    return RequestConfiguration(query_parameters=params)


def _items(answer: _Answer) -> list[Any]:
    return list(answer.body.value or ()) if answer.body is not None else []


def _json(model: Any) -> dict[str, Any]:
    """An SDK model back to Graph JSON, for the bot.graph.mapping functions that read plain JSON."""
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    data: dict[str, Any] = json.loads(writer.get_serialized_content())
    return data


# The SDK has already turned the JSON into msgraph models, so these pick the same fields as
# bot.graph.mapping straight from the models (reusing its credential helpers) instead of re-reading
# JSON: a second msgraph deserialization would charge the naive variant about 20 ms of CPU per sample
# that a real implementation would not spend. The findings check in `problems` guards the equivalence.


def _application(app: Any, owners: Sequence[Any] = (), federated: Sequence[Any] = ()) -> Application:
    credentials = tuple(mapping._secret(p) for p in app.password_credentials or ()) + tuple(
        mapping._certificate(k) for k in app.key_credentials or ()
    )
    return Application(
        object_id=_id(app.id),
        app_id=_id(app.app_id),
        display_name=app.display_name or "(no name)",
        sign_in_audience=app.sign_in_audience,
        credentials=credentials,
        federated_credentials=tuple(
            FederatedCredential(f.name or "", f.issuer or "", f.subject or "", tuple(f.audiences or ()))
            for f in federated
        ),
        # Owners may be users or service principals; only users have a UPN and mail.
        owners=tuple(
            Owner(o.display_name, getattr(o, "user_principal_name", None), getattr(o, "mail", None)) for o in owners
        ),
        deleted_at=mapping._utc(app.deleted_date_time),
    )


def _service_principal(sp: Any) -> ServicePrincipal:
    owner_org = sp.app_owner_organization_id
    return ServicePrincipal(
        object_id=_id(sp.id),
        app_id=_id(sp.app_id),
        display_name=sp.display_name or "(no name)",
        account_enabled=sp.account_enabled is not False,
        app_owner_organization_id=_id(owner_org) if owner_org else None,
    )


def _tenant(org: Any) -> Tenant:
    return Tenant(id=_id(org.id), domains=tuple(d.name.lower() for d in org.verified_domains or () if d.name))


def _id(value: object) -> str:
    return str(value).lower() if value is not None else ""


# --- measuring -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    round_trips: int  # outer HTTP requests the fake received
    reported: int  # round trips the diagnosis says it made
    wall: float  # seconds
    primary: str
    answer: tuple[Any, ...]  # findings, app, where found, sign-ins, audits: to check the variants agree fully


@dataclass
class Results:
    runs: dict[str, dict[str, list[Run]]] = field(default_factory=dict)  # variant -> sample -> runs

    def add(self, variant: str, sample: str, run: Run) -> None:
        self.runs.setdefault(variant, {}).setdefault(sample, []).append(run)

    def of(self, variant: str, sample: str) -> list[Run]:
        return self.runs[variant][sample]


async def measure(graph: FakeGraph, directory: Directory, sample: SampleError) -> Run:
    graph.reset()
    start = time.perf_counter()
    result = await diagnose(sample.text, directory=directory, now=sample_reference_time())
    wall = time.perf_counter() - start
    primary = result.primary.cause.value if result.primary else "-"
    activity = result.activity or Activity()
    answer = (result.findings, result.app, result.found_in, activity.sign_ins, activity.audits)
    return Run(graph.round_trips, result.graph.round_trips, wall, primary, answer)


async def run_all(
    graph: FakeGraph, directories: dict[str, Directory], samples: Sequence[SampleError], repeats: int, latency: float
) -> Results:
    # Warm-up without latency: msgraph-sdk imports request builders lazily on first use, which
    # would otherwise land in whichever variant happens to run first.
    graph.latency = 0.0
    for sample in samples:
        for directory in directories.values():
            await measure(graph, directory, sample)
    graph.latency = latency
    results = Results()
    names = list(directories)
    for repeat in range(repeats):
        # Alternate which variant goes first, so neither always runs on a freshly idle loop.
        order = names if repeat % 2 == 0 else names[::-1]
        for sample in samples:
            for name in order:
                results.add(name, sample.cause, await measure(graph, directories[name], sample))
    return results


# --- reporting -------------------------------------------------------------------------------------


def median_ms(runs: Sequence[Run]) -> float:
    return statistics.median(r.wall for r in runs) * 1000


def problems(results: Results, samples: Sequence[SampleError]) -> list[str]:
    """Everything that would make the comparison unfair or the counts untrustworthy."""
    found = []
    for sample in samples:
        batched, naive = results.of(BATCHED, sample.cause), results.of(NAIVE, sample.cause)
        primaries = {r.primary for r in batched + naive}
        if len(primaries) != 1:
            found.append(f"{sample.cause}: primary causes differ: {sorted(primaries)}")
        elif any(r.answer != batched[0].answer for r in naive):
            found.append(f"{sample.cause}: same primary cause, but findings, app or sign-in evidence differ")
        for name, runs in ((BATCHED, batched), (NAIVE, naive)):
            if len({r.round_trips for r in runs}) != 1:
                found.append(f"{sample.cause}: {name} round trips vary between runs")
            if any(r.reported != r.round_trips for r in runs):
                found.append(f"{sample.cause}: {name} reports other round trips than the server saw")
    return found


_WIDTHS = (-28, -28, 4, 5, 5, 8, 8, 6)  # negative: left-aligned


def _row(*cells: object) -> str:
    return " ".join(f"{cell!s:<{-w}}" if w < 0 else f"{cell!s:>{w}}" for cell, w in zip(cells, _WIDTHS, strict=False))


def table(results: Results, samples: Sequence[SampleError]) -> list[str]:
    head = _row("sample", "primary cause (both)", "same", "RT b", "RT n", "ms b", "ms n", "n/b ms")
    lines = [head, "-" * len(head)]
    for sample in samples:
        batched, naive = results.of(BATCHED, sample.cause), results.of(NAIVE, sample.cause)
        same = "✓" if len({r.primary for r in batched + naive}) == 1 else "✗"
        rt_b, rt_n = batched[0].round_trips, naive[0].round_trips
        ms_b, ms_n = median_ms(batched), median_ms(naive)
        ratio = f"{ms_n / ms_b:.1f}x" if rt_b else "-"
        lines.append(_row(sample.cause, batched[0].primary, same, rt_b, rt_n, f"{ms_b:.1f}", f"{ms_n:.1f}", ratio))
    rt_b, rt_n = (sum(results.of(v, s.cause)[0].round_trips for s in samples) for v in (BATCHED, NAIVE))
    ms_b, ms_n = (sum(median_ms(results.of(v, s.cause)) for s in samples) for v in (BATCHED, NAIVE))
    lines += ["-" * len(head), _row("total", "", "", rt_b, rt_n, f"{ms_b:.1f}", f"{ms_n:.1f}", f"{ms_n / ms_b:.1f}x")]
    return lines


def ratios(results: Results, samples: Sequence[SampleError]) -> list[str]:
    graph_samples = [s.cause for s in samples if results.of(BATCHED, s.cause)[0].round_trips]
    rt = {v: sum(results.of(v, s)[0].round_trips for s in graph_samples) for v in (BATCHED, NAIVE)}
    # Median over the samples that reach Graph of each sample's median wall time.
    wall = {v: statistics.median(median_ms(results.of(v, s)) for s in graph_samples) for v in (BATCHED, NAIVE)}
    return [
        f"round trips, total naive/batched:        {rt[NAIVE]}/{rt[BATCHED]} = {rt[NAIVE] / rt[BATCHED]:.2f}x",
        f"median wall per Graph-using sample:      {wall[NAIVE]:.1f} ms / {wall[BATCHED]:.1f} ms"
        f" = {wall[NAIVE] / wall[BATCHED]:.2f}x  ({len(graph_samples)} of {len(samples)} samples reach Graph)",
    ]


# --- main ------------------------------------------------------------------------------------------


async def main(repeats: int, latency: float, sequential: bool) -> int:
    samples = sample_errors()
    async with FakeGraph(load_snapshot(sample_snapshot_path())) as graph:
        directories: dict[str, Directory] = {
            # Each variant gets its own client (own connection pool), as it would in production.
            BATCHED: GraphDirectory(build_graph_client(graph.base_url, LocalTokenCredential()), GraphMode.SNAPSHOT),
            NAIVE: NaiveDirectory(
                build_graph_client(graph.base_url, LocalTokenCredential()),
                GraphMode.SNAPSHOT,
                concurrent=not sequential,
            ),
        }
        started = time.perf_counter()
        results = await run_all(graph, directories, samples, repeats, latency)
        elapsed = time.perf_counter() - started
    naive_kind = "sequential awaits" if sequential else "independent calls together, asyncio.gather"
    print(f"Graph round trips: GraphDirectory ($batch) vs naive one-call-per-fact ({naive_kind})")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; FakeGraph on loopback, {latency * 1000:.0f} ms")
    print(f"injected per HTTP request; median of {repeats} runs after one warm-up pass; b = batched, n = naive,")
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
        print(f"✓ same primary cause from both variants for all {len(samples)} samples (indeed identical findings,")
        print("  app, sign-ins and audits)")
        print("✓ round trips each diagnosis reported = requests the fake received, in every run")
    print(f"(benchmark took {elapsed:.1f} s)")
    return 1 if found else 0


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per sample and variant (default 3)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per HTTP request (default 0.1)")
    parser.add_argument("--sequential", action="store_true", help="naive variant awaits every call in turn")
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    sys.exit(asyncio.run(main(args.repeats, args.latency, args.sequential)))

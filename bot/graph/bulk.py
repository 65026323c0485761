"""Whole-tenant reads: a Graph collection page by page, as plain dicts, never msgraph models.

A scan reads every application and service principal. Parsed into msgraph's models that costs 3-7 ms
of CPU per app (six to twelve minutes for 100,000); read as raw pages with aiohttp and orjson, under
a second of CPU (figures in docs/benchmarks.md, "Bulk reads"). So this reader asks for 999 objects a
page with `$select`, follows `@odata.nextLink` to the end, and yields each page's records as Graph
sent them. Only one page is held at a time, plus the next one on its way (fetched while the caller
works through the current one), so memory stays flat whatever the tenant's size. `delta_pages` walks
a delta round the same way (`/applications/delta`, or a stored `@odata.deltaLink`) and raises
`DeltaExpired` when Graph refuses the link, so the caller reads everything again.

It sends through `GraphHttp` (the diagnosis's transport: one session, one cached token for the
host, the same token scope as `build_graph_client`), and handles throttling itself: 429/503/504 are
retried after Retry-After (seconds or an HTTP date), else after an exponential back-off, a bounded
number of times; 401, 403 and persistent failures end the read with the domain's `DirectoryError`s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
import orjson
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from yarl import URL

from bot.domain import DirectoryError, DirectoryUnavailable, GraphAuthFailed, PermissionDenied, Throttled
from bot.graph.directory import MAX_RETRY_WAIT, READ_PERMISSION, RETRYABLE, SNAPSHOT_CREDENTIAL
from bot.graph.directory import _seconds as retry_after_seconds
from bot.graph.transport import GraphHttp, token_error

PAGE_SIZE = 999  # Graph's largest page for applications and service principals
MAX_PAGE_BYTES = 64 * 1024 * 1024  # a page of 999 apps with many credentials is a few MB
REQUEST_TIMEOUT = 60.0  # seconds per page, connecting included
_QUERY_SAFE = "$,'()/:"  # kept as they are in $select/$filter/$expand; spaces and the rest are encoded

Record = dict[str, Any]
# Graph's ways of refusing a delta link: `syncStateNotFound` (400) once an identity link is older than
# 7 days, 410 Gone with `resyncRequired`-like codes for other resources. Either means: sync in full.
_DELTA_EXPIRED_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})


class DeltaExpired(DirectoryError):
    """Graph refused a delta link: the caller starts again with a full round."""


@dataclass(frozen=True)
class DeltaPage:
    values: list[Record]
    delta_link: str | None  # set on the last page of a round: where the next round starts


class BulkReader:
    """Reads whole Graph collections. Use as `async with BulkReader(base_url, credential) as reader:`."""

    def __init__(
        self,
        base_url: str,
        credential: AsyncTokenCredential,
        *,
        credential_source: str = SNAPSHOT_CREDENTIAL,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._root = base_url.rstrip("/")
        self._origin = URL(self._root).origin()
        # A page walk has this page and the next in flight at most: two kept-alive connections do.
        self._http = GraphHttp(self._root, credential, max_connections=2, timeout=REQUEST_TIMEOUT)
        self._credential_source = credential_source  # named when Graph refuses the credential
        self._max_retries = max_retries
        self._retry_delay = retry_delay  # back-off base when Graph gives no Retry-After
        self._page_size = page_size
        self.round_trips = 0  # HTTP requests sent, retries included

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.close()

    async def records(
        self,
        collection: str,
        select: Sequence[str],
        *,
        filter: str | None = None,
        expand: str | None = None,
        version: str = "v1.0",
        permission: str = READ_PERMISSION,
    ) -> AsyncIterator[Record]:
        """Every object of `collection` ("applications", "servicePrincipals"), with only `select`'s fields."""
        pages = self.pages(collection, select, filter=filter, expand=expand, version=version, permission=permission)
        async for page in pages:
            for record in page:
                yield record

    async def pages(
        self,
        collection: str,
        select: Sequence[str],
        *,
        filter: str | None = None,
        expand: str | None = None,
        version: str = "v1.0",
        permission: str = READ_PERMISSION,
    ) -> AsyncIterator[list[Record]]:
        """The collection one page at a time (each a list of plain dicts), until `@odata.nextLink` ends.

        `permission` is what a 403 names (Application.Read.All covers applications and service
        principals). `filter` and `expand` go to Graph as `$filter` and `$expand` unchanged.
        """
        first = self._first_url(collection, select, filter=filter, expand=expand, version=version)
        async for body in self._walk(first, permission, f"reading {collection}"):
            values = body.get("value")
            if not isinstance(values, list):
                raise DirectoryUnavailable(f"Microsoft Graph sent a page of {collection} without a value list")
            yield values

    async def delta_pages(
        self,
        collection: str,
        select: Sequence[str],
        *,
        delta_link: str | None = None,
        permission: str = READ_PERMISSION,
    ) -> AsyncIterator[DeltaPage]:
        """A delta round of `collection` ("applications", "servicePrincipals"): every object when
        `delta_link` is None, else only what changed since that link was issued. The last page
        carries the link for the next round. `DeltaExpired` when Graph refuses `delta_link`.
        """
        if delta_link is None:
            first = self._first_url(f"{collection}/delta", select)
        elif not (stored := URL(delta_link, encoded=True)).is_absolute() or stored.origin() != self._origin:
            # Stored while the bot spoke to another Graph (GRAPH_BASE_URL changed): start afresh there.
            raise DeltaExpired("the stored delta link is for another Graph host; reading everything again")
        else:
            first = self._checked_link(delta_link, "a delta link")
        async for body in self._walk(first, permission, f"reading changes to {collection}"):
            values = body.get("value")
            if not isinstance(values, list):
                raise DirectoryUnavailable(f"Microsoft Graph sent a page of {collection} without a value list")
            link = body.get("@odata.deltaLink")
            yield DeltaPage(values, link if isinstance(link, str) else None)

    async def report(
        self, path: str, *, version: str = "beta", permission: str = READ_PERMISSION
    ) -> AsyncIterator[list[Record]]:
        """Every page of a report that takes no `$select` or `$top` (e.g. reports/appCredentialSignInActivities)."""
        first = URL(f"{self._root}/{version}/{path}", encoded=True)
        async for body in self._walk(first, permission, f"reading {path}"):
            values = body.get("value")
            if not isinstance(values, list):
                raise DirectoryUnavailable(f"Microsoft Graph sent a page of {path} without a value list")
            yield values

    def _first_url(
        self,
        collection: str,
        select: Sequence[str],
        *,
        filter: str | None = None,
        expand: str | None = None,
        version: str = "v1.0",
    ) -> URL:
        if not select:
            raise ValueError("select at least one property: a whole-tenant read without $select is slow")
        options = {"$top": str(self._page_size), "$select": ",".join(select), "$filter": filter, "$expand": expand}
        query = "&".join(f"{name}={quote(value, safe=_QUERY_SAFE)}" for name, value in options.items() if value)
        return URL(f"{self._root}/{version}/{collection}?{query}", encoded=True)

    async def _walk(self, first: URL, permission: str, what: str) -> AsyncIterator[Record]:
        """Each page's body from `first` until `@odata.nextLink` ends."""
        # The next page is requested as soon as this one is parsed, so Graph prepares it while the
        # caller works: at most two pages are alive at any time.
        pending: asyncio.Future[Record] | None = asyncio.ensure_future(self._page(first, permission, what))
        try:
            while pending is not None:
                body = await pending
                url = self._next_link(body)
                pending = asyncio.ensure_future(self._page(url, permission, what)) if url is not None else None
                yield body
        finally:
            # A caller that stops early leaves the next page in flight: cancel it, and collect its
            # outcome either way, so a failure nobody will read is not reported as unretrieved.
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    def _next_link(self, body: Record) -> URL | None:
        link = body.get("@odata.nextLink")
        return None if link is None else self._checked_link(link, "a next-page link")

    def _checked_link(self, link: object, what: str) -> URL:
        url = URL(link, encoded=True) if isinstance(link, str) else None
        # The bearer token goes with the request: never to a host other than the one we asked.
        if url is None or not url.is_absolute() or url.origin() != self._origin:
            raise DirectoryUnavailable(f"Microsoft Graph sent {what} that does not point back to Graph")
        return url

    async def _page(self, url: URL, permission: str, what: str) -> Record:
        """One page, parsed; throttling and unavailability retried, everything else a `DirectoryError`."""
        attempt = 0
        while True:
            attempt += 1
            status, retry_after, body = await self._get(url)
            if status == 200 and body is not None:
                return body
            error: DirectoryError
            if status == 410 or (status == 400 and _error_code(body) in _DELTA_EXPIRED_CODES):
                error = DeltaExpired("Microsoft Graph refused the stored delta link; reading everything again")
            elif status == 401:
                error = GraphAuthFailed(self._credential_source, " (HTTP 401)")
            elif status == 403:
                error = PermissionDenied(permission, what)
            elif status == 429:
                error = Throttled(retry_after or 0.0)
            elif status is None:
                error = DirectoryUnavailable("Microsoft Graph could not be reached")
            else:
                error = DirectoryUnavailable(f"Microsoft Graph answered HTTP {status} while {what}")
            retryable = status is None or status in RETRYABLE
            wait = retry_after if retry_after is not None else self._retry_delay * 2 ** (attempt - 1)
            if not retryable or attempt > self._max_retries or wait > MAX_RETRY_WAIT:
                if isinstance(error, Throttled):
                    error = Throttled(wait)
                error.round_trips = attempt
                raise error
            await asyncio.sleep(wait)

    async def _get(self, url: URL) -> tuple[int | None, float | None, Record | None]:
        """(status, Retry-After in seconds or None, parsed body when 200 or a 400/410 error); status None: no answer."""
        try:
            reply = await self._http.get(url, max_bytes=MAX_PAGE_BYTES)
        except AzureError as error:
            raise token_error(error, self._credential_source) from None
        except (aiohttp.ClientError, TimeoutError):
            self.round_trips += 1
            return None, None, None
        self.round_trips += 1
        retry_after = reply.headers.get("retry-after")
        seconds = retry_after_seconds(retry_after) if retry_after is not None else None
        if reply.status != 200:
            return reply.status, seconds, _error_body(reply.body) if reply.status in (400, 410) else None
        try:
            body = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            raise DirectoryUnavailable("Microsoft Graph sent a page that is not JSON") from None
        if not isinstance(body, dict):
            raise DirectoryUnavailable("Microsoft Graph sent a page that is not a JSON object")
        return 200, None, body


def _error_body(raw: bytes) -> Record | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _error_code(body: Record | None) -> str | None:
    error = (body or {}).get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None

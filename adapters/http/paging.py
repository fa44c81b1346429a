"""Paging of the lists (issue 20 point 5): `limit`/`offset` on the API, with the total in
`X-Total-Count` and the next and previous pages in a `Link` header (RFC 8288); `page` on the pages,
with previous/next links. The body of an API list stays a plain JSON array, as before."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.params import QueryParameter

from adapters.readmodel_lists import API_DEFAULT_LIMIT, API_MAX_LIMIT, PAGE_SIZE
from ledger import errors

Limit = Annotated[str | None, QueryParameter(
    max_length=12, description=f"How many rows (1..{API_MAX_LIMIT}; default {API_DEFAULT_LIMIT}). "
                               "The total is in X-Total-Count, the next page in the Link header.")]
Offset = Annotated[str | None, QueryParameter(max_length=12, description="How many rows to skip (default 0).")]
MAX_OFFSET = 10**9


def api_paging(limit: str | None, offset: str | None) -> tuple[int, int]:
    """`limit` and `offset` as numbers; bad ones refused naming the field and the reason."""
    def number(field: str, text: str | None, default: int, low: int, high: int, reason: str) -> int:
        if text is None or text == "":
            return default
        value = text.strip()
        if not value.isdigit() or not low <= int(value) <= high:
            raise errors.InvalidCommand(field, reason, value=text, max=high)
        return int(value)

    return (number("limit", limit, API_DEFAULT_LIMIT, 1, API_MAX_LIMIT, "invalid.limit_out_of_range"),
            number("offset", offset, 0, 0, MAX_OFFSET, "invalid.offset_not_whole"))


def paged(request: Request, content: list, total: int, limit: int, offset: int) -> Response:
    """A page of an API list: the rows, X-Total-Count, and Link to the next and previous pages."""
    links = []
    for rel, start in (("next", offset + limit if offset + limit < total else None),
                       ("prev", max(0, offset - limit) if offset > 0 else None)):
        if start is not None:
            query = {**dict(request.query_params), "limit": str(limit), "offset": str(start)}
            links.append(f'<{request.url.path}?{urlencode(query)}>; rel="{rel}"')
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = ", ".join(links)
    return Response(content, headers=headers)


class Pager:
    """A page's place in a list shown PAGE_SIZE rows at a time, and the links to its neighbours."""

    def __init__(self, path: str, page: str | None, params: dict | None = None, size: int = PAGE_SIZE):
        self.path, self.params, self.size = path, {k: v for k, v in (params or {}).items() if v}, size
        self.page = int(page) if page and page.isdigit() and 0 < int(page) < 10**6 else 1
        self.pages = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def found(self, total: int) -> "Pager":
        self.pages = max(1, -(-total // self.size))
        return self

    def page_link(self, number: int) -> str:
        query = urlencode({**self.params, **({"page": number} if number > 1 else {})})
        return self.path + ("?" + query if query else "")

"""Admin API routes over the news spool: the groups, a group's articles, one article raw.

The NNTP server returns these from ``admin_routes()``. Spool reads are small (an
in-memory index, one article file), so the handlers answer on the admin loop directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.web import ApiError, ApiRequest, Reply, Route
from .store import NewsSpool, NoSuchArticle, NoSuchGroup

if TYPE_CHECKING:
    from ..core.context import Core


def news_routes(core: Core) -> list[Route]:
    api = NewsApi(core.shared(NewsSpool))
    return [
        Route(
            "GET", "/api/v1/news", api.groups, "newsgroups with description, posting, count, low and high-water marks"
        ),
        Route(
            "GET", "/api/v1/news/{group}", api.articles, "a group's articles: number, message_id, subject, from, date"
        ),
        Route("GET", "/api/v1/news/{group}/{number}", api.article, "one article as stored (message/news)"),
    ]


class NewsApi:
    def __init__(self, spool: NewsSpool):
        self.spool = spool

    def groups(self, request: ApiRequest) -> Any:
        return {
            "groups": [
                {
                    "name": group.name,
                    "description": group.config.description,
                    "posting": group.config.posting,
                    "count": group.count,
                    "low": group.low,
                    "high": group.high_water,
                    "created": group.created,
                }
                for group in self.spool.groups()
            ]
        }

    def articles(self, request: ApiRequest) -> Any:
        name = request.params["group"]
        try:
            entries = self.spool.entries(name)
        except NoSuchGroup:
            raise ApiError(404, f"no newsgroup {name!r}") from None
        return {"group": name, "count": len(entries), "articles": [entry.as_json() for entry in entries]}

    def article(self, request: ApiRequest) -> Reply:
        name, number_text = request.params["group"], request.params["number"]
        if not number_text.isdigit():
            raise ApiError(400, f"article number: expected a positive integer, got {number_text!r}")
        try:
            data = self.spool.read(name, int(number_text))
        except NoSuchGroup:
            raise ApiError(404, f"no newsgroup {name!r}") from None
        except NoSuchArticle:
            raise ApiError(404, f"no article {number_text} in {name}") from None
        return Reply(200, data, content_type="message/news")

"""The connector file format (CONNECTORS.md), as pydantic models. Unknown keys are errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from flowlang.connectors.declarative.places import toml_kind
from flowlang.connectors.http.pagination import BOUNDS, bound_problem
from flowlang.connectors.http.ratelimit import MAX_RATE_COUNT

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
METHODS = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
# what the before-validators below accept, for the JSON Schema (`flowlang connectors schema`)
METHOD_SCHEMA = WithJsonSchema({"enum": [m for u in get_args(METHODS) for m in (u, u.lower())]})
QUERY_SCHEMA = WithJsonSchema({"anyOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                                         {"type": "array", "items": {"type": "string"}}],
                               "description": "argument name -> query parameter name, or a list of names"})


PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def http_url(url: str) -> str:
    """A base URL of the file as the connection will judge it when it opens (http_settings), so a run
    never starts with one it refuses: http(s), a readable port. Placeholders are judged once filled; one
    that starts the URL ("{store_url}/wp-json") is the whole address, checked then."""
    if url.startswith("{"):
        return url
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, got {url!r}")
    from flowlang.connectors.http.spec import config_value_problem  # the http rules, when needed

    problem = config_value_problem("base_url", PLACEHOLDER.sub("0", url))
    if problem is not None:
        raise ValueError(problem.removeprefix("base_url: "))
    return url


HttpUrl = Annotated[str, AfterValidator(http_url)]


def _bounded(key: str) -> Callable[[int], int]:
    """size, max_pages and start of a pagination table: the rule of `pages:` in a flow (BOUNDS)."""
    def check(number: int) -> int:
        problem = bound_problem(key, number)
        if problem is not None:
            raise ValueError(problem.removeprefix(f"{key} "))
        return number
    return check


def _bounds_schema(key: str) -> WithJsonSchema:
    lowest, highest, _ = BOUNDS[key]
    return WithJsonSchema({"type": "integer", "minimum": lowest, "maximum": highest})


PageSize = Annotated[int, AfterValidator(_bounded("size")), _bounds_schema("size")]
PageCap = Annotated[int, AfterValidator(_bounded("max_pages")), _bounds_schema("max_pages")]
PageStart = Annotated[int, AfterValidator(_bounded("start")), _bounds_schema("start")]


class Strict(BaseModel):
    """Unknown keys are errors, and so is a value of another TOML type: strict, a string is never taken
    for a number (size = "10"), a number for a string, true for 1, 10.0 for a whole number."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True)


class ConfigEntry(Strict):
    """A key `use` must or may pass."""

    required: bool = False
    secret: bool = False
    default: Any = None
    description: str = ""


class AuthModel(Strict):
    type: Literal["bearer", "basic", "api_key", "oauth2_client_credentials"]
    token: str | None = None
    user: str | None = None
    password: str | None = None
    name: str | None = None
    value: str | None = None
    in_: Literal["header", "query"] = Field("header", alias="in")
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None
    auth_method: Literal["post", "basic"] = "post"  # oauth2: client secret in the form, or HTTP Basic

    @model_validator(mode="after")
    def needs(self) -> AuthModel:
        wanted = {"bearer": ["token"], "basic": ["user", "password"], "api_key": ["name", "value"],
                  "oauth2_client_credentials": ["token_url", "client_id", "client_secret"]}[self.type]
        missing = [k for k in wanted if getattr(self, k) is None]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self


class RateLimitModel(Strict):
    requests: Annotated[PositiveInt, Field(le=MAX_RATE_COUNT)]  # the limiter's bound (ratelimit.parse_rate)
    per: Literal["second", "minute", "hour", "day"] = "minute"


class PaginationModel(Strict):
    style: Literal["page", "offset", "cursor", "link", "next_url"]
    records: str | None = None
    page_param: str | None = None
    size_param: str | None = None
    size: PageSize | None = None
    start: PageStart | None = None
    total_pages: str | None = None
    offset_param: str | None = None
    limit_param: str | None = None
    total: str | None = None
    cursor_param: str | None = None
    cursor: str | None = None
    cursor_field: str | None = None
    next: str | None = None
    has_more: str | None = None
    max_pages: PageCap | None = None  # the page cap (default 10,000)

    @model_validator(mode="after")
    def style_keys(self) -> PaginationModel:
        if self.style == "cursor" and not self.cursor and not self.cursor_field:
            raise ValueError('style "cursor" needs cursor (the path of the next cursor in the answer) or '
                             "cursor_field (the field of the last record that is the next cursor)")
        if self.style == "next_url" and not self.next:
            raise ValueError('style "next_url" needs next (the path of the next URL in the answer)')
        return self


class BatchModel(Strict):
    max: PositiveInt = 100
    body: str | None = None  # where the records go in the request body (the body is the list when absent)
    results: str | None = None  # where the per-record results are in the answer
    ok: str = "ok"
    error: str = "error"


class OperationModel(Strict):
    method: Annotated[METHODS, METHOD_SCHEMA]
    path: str
    description: str = ""
    query: Annotated[dict[str, str], QUERY_SCHEMA] = Field(default_factory=dict)  # argument -> query parameter
    headers: dict[str, str] = Field(default_factory=dict)
    pagination: PaginationModel | None = None
    batch: BatchModel | None = None
    records: str | None = None  # path of the records in a non-paginated answer
    safe: bool = False  # a non-GET operation that changes nothing (runs under --dry-run)
    idempotency_key: str | None = None  # template over the record, sent as Idempotency-Key
    content_type: Literal["json", "form"] | None = None  # the request body's encoding (default: the file's)
    required: list[str] = Field(default_factory=list)  # query arguments a call must give
    fields: list[str] = Field(default_factory=list)  # the body fields it sends (checked by `connectors verify`)
    envelope: str | None = None  # the record is sent as {envelope: record} (Asana: "data")
    result: str | None = None  # the dotted path of the answer to return (the whole answer when absent)

    @field_validator("query", mode="before")
    @classmethod
    def query_names(cls, value: Any) -> Any:
        """query = ["email"] (same names) or query = { email = "filter[email]" }."""
        if isinstance(value, list):
            odd = next((v for v in value if not isinstance(v, str)), None)
            if odd is not None:
                raise ValueError(f"each name of the list must be a string, got {toml_kind(odd)}")
            return {v: v for v in value}
        return value

    @model_validator(mode="after")
    def required_are_query(self) -> OperationModel:
        taken = [a for a in self.query if a in ("query", "headers", "body")]
        if taken:
            raise ValueError(f"the query argument {taken[0]!r} would hide the generic {taken[0]}: argument; "
                             f"name it differently (e.g. q = \"{self.query[taken[0]]}\")")
        unknown = [r for r in self.required if r not in self.query]
        if unknown:
            raise ValueError(f"required names {', '.join(unknown)}, which are not query arguments")
        return self

    @field_validator("method", mode="before")
    @classmethod
    def upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def starts_with_slash(cls, value: str) -> str:
        if not value.startswith("/") and not value.startswith("http"):
            raise ValueError("must start with / (it is joined to base_url)")
        return value


class ConnectorFile(Strict):
    name: str
    title: str = ""
    docs: str = ""
    base_url: HttpUrl
    regions: dict[str, HttpUrl] = Field(default_factory=dict)  # region name -> base URL (config key `region`)
    config: dict[str, ConfigEntry] = Field(default_factory=dict)
    auth: AuthModel | None = None
    rate_limit: RateLimitModel | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float | None = None
    content_type: Literal["json", "form"] = "json"  # request bodies as JSON or form fields
    param_style: Literal["repeat", "brackets", "indices", "comma"] = "repeat"  # lists in queries and forms
    operations: dict[str, OperationModel]

    @field_validator("name")
    @classmethod
    def identifier(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError("must be a name like my_api (letters, digits, _)")
        return value

    @field_validator("timeout", mode="before")
    @classmethod
    def positive_timeout(cls, value: Any) -> Any:
        """timeout = -1 (or "30") is refused as `timeout: -1` in `use` is, when the file is loaded."""
        from flowlang.connectors.http.spec import config_value_problem

        problem = config_value_problem("timeout", value)
        if problem is not None:
            raise ValueError(problem.removeprefix("timeout: "))
        return value

    @field_validator("operations")
    @classmethod
    def operation_names(cls, value: dict[str, OperationModel]) -> dict[str, OperationModel]:
        for name in value:
            if not IDENTIFIER.match(name):
                raise ValueError(f"operation name {name!r} must be a name like list_orders")
        if not value:
            raise ValueError("a connector needs at least one operation")
        return value

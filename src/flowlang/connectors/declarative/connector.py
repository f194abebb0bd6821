"""A connector file turned into a ConnectorSpec, and its connections: each operation is a request
template run by the HTTP client (auth, retries, rate limit, pagination, batches)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from flowlang.connectors.base import ConfigKey, Connection, ConnectorSpec, OperationSpec, RunServices, SendOutcome
from flowlang.connectors.declarative.models import AuthModel, ConnectorFile, OperationModel
from flowlang.connectors.http.client import BODY_SHOWN, HttpClient
from flowlang.connectors.http.connection import idempotency_key_of
from flowlang.connectors.http.pagination import Paginator, empty_answer, has_path, page_spec, records_of
from flowlang.connectors.http.retry import IDEMPOTENT
from flowlang.connectors.http.spec import HTTP_CONFIG, config_value_problem, http_settings
from flowlang.connectors.http.urls import fill, placeholders
from flowlang.errors import FlowRuntimeError
from flowlang.runtime.builtins.collections import path_get
from flowlang.runtime.jsoncodec import dumps
from flowlang.runtime.masking import cut, mask_value
from flowlang.runtime.values import Secret, Value, article, to_text, type_name

READS = ("GET", "HEAD")
CALL_KEYS = ("query", "headers", "body")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
FIELD_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\}")  # {metadata.order_id}


def operation_spec(name: str, op: OperationModel) -> OperationSpec:
    holes = tuple(placeholders(op.path))
    reads = op.method in READS
    return OperationSpec(
        name=name, description=op.description, params=(),
        required=(*holes, *op.required) if reads else tuple(op.required),
        keywords=frozenset(holes) | frozenset(op.query) | frozenset(CALL_KEYS)
        | (frozenset({"max_pages"}) if op.pagination is not None else frozenset())
        | (frozenset({"idempotency_key"}) if not reads and op.batch is None else frozenset()),
        changes_data=not reads and not op.safe, takes_batch=op.batch is not None,
        max_batch=op.batch.max if op.batch else None, returns_stream=op.pagination is not None,
        method=op.method, path=op.path, fields=tuple(op.fields),
    )


def config_keys(model: ConnectorFile) -> tuple[ConfigKey, ...]:
    own = [ConfigKey(k, v.required, v.secret, v.description, v.default) for k, v in model.config.items()]
    if model.regions and "region" not in model.config:
        first = next(iter(model.regions))
        own.append(ConfigKey("region", description=f"{' or '.join(repr(r) for r in model.regions)} "
                             f"(default {first!r})", default=first))
    names = {k.name for k in own}
    generic = [k if k.name != "base_url" else ConfigKey("base_url", description=f"default {model.base_url}")
               for k in HTTP_CONFIG if k.name not in names and k.name != "auth"]
    return (*own, *generic)


def text_template(template: str, values: Mapping[str, Any]) -> str:
    """Fill {name} with config values as they are (for auth and headers)."""
    def replace(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if value is None:
            raise missing_value(template, m.group(1), values)
        return value.reveal() if isinstance(value, Secret) else to_text(value)
    return PLACEHOLDER.sub(replace, template)


def missing_value(template: str, name: str, values: Mapping[str, Any]) -> FlowRuntimeError:
    """A placeholder whose configuration key is not given, or given as null (an unset env.NAME)."""
    why = ", which is null here (is the environment variable it is read from set?)" if name in values else ""
    return FlowRuntimeError(f"{template!r} needs the configuration key '{name}'{why}", "connector")


def record_template(template: str, record: Mapping[str, Any]) -> str:
    """Fill an operation's idempotency_key with the record's fields; a dotted name reaches into an
    object ("order-{metadata.order_id}"), for an API that refuses a field it does not know."""
    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        value = path_get(record, name) if "." in name else record.get(name)
        if value is None:
            held = has_path(record, name) if "." in name else name in record
            raise FlowRuntimeError(f"the idempotency_key {template!r} needs the record's field '{name}', which is "
                                   f"{'null' if held else 'missing'}; or give idempotency_key: in the send",
                                   "connector")
        text = value.reveal() if isinstance(value, Secret) else to_text(value)
        if not text.strip():  # "order-{id}" with an empty id: every such record would share one key
            raise FlowRuntimeError(f"the idempotency_key {template!r} needs the record's field '{name}', which is "
                                   "empty (a key it filled would be the same for every such record); or give "
                                   "idempotency_key: in the send", "connector")
        return text
    return FIELD_PLACEHOLDER.sub(replace, template)


def base_url(template: str, values: Mapping[str, Any]) -> str:
    """The base URL: a whole-URL placeholder is taken as it is, other values as path segments."""
    whole = PLACEHOLDER.fullmatch(template)
    if whole:
        return text_template(template, values)
    lead = PLACEHOLDER.match(template)
    if lead:  # "{store_url}/wp-json/wc/v3": the leading value is a URL, taken as it is
        start = text_template(lead.group(0), values).rstrip("/")
        if not start.startswith(("http://", "https://")):
            raise FlowRuntimeError(f"{lead.group(1)} must be an http(s):// address, got {start!r}", "connector")
        return start + base_url(template[lead.end():], values) if template[lead.end():] else start
    for name in placeholders(template):  # said as for auth and headers (was "needs a value for", though given)
        if values.get(name) is None:
            raise missing_value(template, name, values)
    return fill(template, {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in values.items()},
                "base_url")


def auth_value(auth: AuthModel | None, values: Mapping[str, Any]) -> Any:
    if auth is None:
        return None
    out: dict[str, Any] = {"type": auth.type}
    for key in ("token", "user", "password", "name", "value", "token_url", "client_id", "client_secret", "scope"):
        raw = getattr(auth, key)
        if raw is not None:
            out[key] = Secret(text_template(raw, values))
    out["in"] = auth.in_
    out["auth_method"] = auth.auth_method
    for plain in ("name", "token_url", "scope"):
        if plain in out:
            out[plain] = out[plain].reveal()
    return out


def build_spec(model: ConnectorFile, origin: str) -> ConnectorSpec:
    async def open_declarative(name: str, config: Mapping[str, Value], services: RunServices) -> Connection:
        values: dict[str, Any] = {k: v.default for k, v in model.config.items() if v.default is not None}
        values.update({k: v for k, v in config.items() if v is not None})
        values.update({k: None for k, v in config.items() if v is None and k not in values})  # given as null
        for key, entry in model.config.items():
            if entry.secret and isinstance(values.get(key), str):
                values[key] = Secret(values[key], key)
            if isinstance(values.get(key), Secret):
                services.register_secret(values[key].reveal())
        template = model.base_url
        if model.regions:
            region = values.get("region") or next(iter(model.regions))
            refused = region_problem(model, region)
            if refused is not None:
                raise FlowRuntimeError(refused, "connector")
            template = model.regions[str(region)]
        override = config.get("base_url") if "base_url" not in model.config else None
        if isinstance(override, Secret):
            override = override.reveal()
        url: Any = base_url(override, values) if isinstance(override, str) else base_url(template, values)
        if any(isinstance(v, Secret) and v.reveal() and v.reveal() in url for v in values.values()):
            url = Secret(url)  # made from a secret: the key in its query is masked on its own (http_settings)
        settings_config: dict[str, Any] = {
            "base_url": url,
            "auth": auth_value(model.auth, values),
            "headers": {**{k: text_template(v, values) for k, v in model.headers.items()},
                        **(config.get("headers") or {})},
            "timeout": config.get("timeout") or model.timeout,
            "retry": config.get("retry"),
            "max_retry_wait": config.get("max_retry_wait"),
            "rate_limit": config.get("rate_limit") or (
                f"{model.rate_limit.requests}/{model.rate_limit.per}" if model.rate_limit else None),
            "verify": config.get("verify", True),
            "proxy": config.get("proxy"),
            "allowed_hosts": config.get("allowed_hosts"),
            "max_response_bytes": config.get("max_response_bytes"),
            "max_connections": config.get("max_connections"),
            "param_style": config.get("param_style") or model.param_style,
        }
        client = HttpClient(name, http_settings(settings_config, services), services, json_api=True)
        return DeclarativeConnection(name, spec, model, client)

    spec = ConnectorSpec(
        name=model.name, title=model.title or model.name, origin=origin, config=config_keys(model),
        operations={name: operation_spec(name, op) for name, op in model.operations.items()},
        open=open_declarative, docs=model.docs,
        value_problem=lambda key, value: (None if key in model.config else region_problem(model, value)
                                          if key == "region" and model.regions else config_value_problem(key, value)),
    )
    return spec


def region_problem(model: ConnectorFile, region: Any) -> str | None:
    """A region: that is not one of the file's `regions` (a list was an internal error: unhashable)."""
    if region is None or (isinstance(region, str) and region in model.regions):
        return None
    got = repr(region) if isinstance(region, str) else type_name(region)
    return f"region: must be one of {', '.join(model.regions)} (the regions of {model.name}), got {got}"


def batch_refusal(result: Any, ok: str, error: str, mask: Callable[[str], str] = str) -> str | None:
    """Why one record's result in a batch answer is not clearly ok, or None when it is. With an `ok`
    field name (the default "ok") only `true` there is ok: 0, "false", "true", null or a missing field
    fail the record. With `ok = ""` (results carry no flag) a result is ok unless it is null or false
    or holds a non-null `error` field. The API's error is cut to BODY_SHOWN characters, as an error
    body is (masked first, so no part of a secret is left at the cut)."""
    message = result.get(error) if isinstance(result, dict) else None
    if message is not None and (not ok or result.get(ok) is not True):
        return cut(to_text(message), BODY_SHOWN, mask)
    if result is None or result is False:
        return f"the API's result for this record is {dumps(result)}"
    if not ok:
        return None
    if not isinstance(result, dict):
        return f"the API's result for this record is {type_name(result)}, not an object with an {ok!r} field"
    if ok not in result:
        return f"the API's result for this record has no {ok} field (it is ok only when {ok}: true)"
    if result[ok] is not True:
        return f"the API did not accept the record ({ok}: {dumps(result[ok])}, not true)"
    return None


def without_path_fields(model: OperationModel, record: Any, kwargs: Mapping[str, Any]) -> Any:
    """The body of a send: the record, less the fields that filled the path and that the operation's
    `fields` does not list (Stripe refuses a parameter it does not know: customer=cus_1 in the body of
    POST /v1/customers/{customer} is a 400). Without `fields`, the record as it is, but for a DELETE:
    the record names what to delete (`send {customer: c.id} to stripe.delete_customer`), so the fields
    that filled its path stay out of the body, and a DELETE left with none sends no body at all (it was
    sent {"customer": "cus_1"} as JSON, which Stripe's DELETE, taking no parameter, refuses)."""
    if type(record) is not dict or not (model.fields or model.method == "DELETE"):
        return record
    used = [h for h in placeholders(model.path) if h in record and h not in kwargs and h not in model.fields]
    body = {k: v for k, v in record.items() if k not in used} if used else record
    return None if model.method == "DELETE" and not body else body


class DeclarativeConnection(Connection):
    def __init__(self, name: str, spec: ConnectorSpec, model: ConnectorFile, client: HttpClient) -> None:
        super().__init__(name, spec)
        self.model = model
        self.client = client

    def write_count(self) -> int:
        return self.client.writes

    def operation(self, op: str) -> OperationModel:
        found = self.model.operations.get(op)
        if found is None:
            raise FlowRuntimeError(f"{self.model.name} has no operation '{op}'", "connector")
        return found

    def sends_read(self, op: str) -> bool:
        found = self.model.operations.get(op)
        return found is not None and found.safe

    def repeatable(self, op: str, record: Value, kwargs: dict[str, Value]) -> bool:
        found = self.model.operations.get(op)
        if found is None or found.batch is not None:  # a batch's records are settled one by one: not here
            return False
        return found.method.upper() in IDEMPOTENT or kwargs.get("idempotency_key") is not None or bool(
            found.idempotency_key and isinstance(record, dict))

    def form(self, op: OperationModel) -> bool:
        return (op.content_type or self.model.content_type) == "form"

    def request_parts(self, op: OperationModel, kwargs: dict[str, Value], record: Any = None
                      ) -> tuple[str, dict[str, Any] | None]:
        holes = placeholders(op.path)
        values = dict(record) if isinstance(record, dict) else {}
        values.update({k: v for k, v in kwargs.items() if k in holes})
        path = fill(op.path, values, dry_run=self.client.services.dry_run) if holes else op.path
        query: dict[str, Any] = {param: kwargs[arg] for arg, param in op.query.items() if arg in kwargs}
        extra = kwargs.get("query")
        if extra is not None:
            if not isinstance(extra, dict):
                raise FlowRuntimeError(f"query: must be an object, got {type_name(extra)}", "connector")
            query.update(extra)
        given = kwargs.get("headers")
        if given is not None and not isinstance(given, dict):  # was "internal error (TypeError: ...)"
            raise FlowRuntimeError(f"headers: must be an object, got {type_name(given)}", "connector")
        headers = {**op.headers, **(given or {})}
        return self.client.url(path, query), headers or None

    async def invoke(self, op: str, args: list[Value], kwargs: dict[str, Value]) -> Value:
        model = self.operation(op)
        url, headers = self.request_parts(model, kwargs)
        if model.pagination is not None:
            pagination = model.pagination.model_dump(exclude_none=True)
            if kwargs.get("max_pages") is not None:  # the flow raises (or lowers) the connector's page cap
                pagination["max_pages"] = kwargs["max_pages"]
            spec = page_spec(pagination)
            return Paginator(self.client, model.method, url, None, headers, spec).stream(f"{self.name}.{op}()")
        body = kwargs.get("body")
        if body is not None and model.envelope:
            body = {model.envelope: body}
        given = kwargs.get("idempotency_key")
        answer = await self.client.request(model.method, url, headers=headers, body=body,
                                           changes_data=model.method not in READS and not model.safe,
                                           idempotency_key=idempotency_key_of(given),
                                           form=self.form(model))
        value = path_get(answer.value, model.result) if model.result else answer.value
        if answer.response is not None and (model.records or op.startswith("list_")):
            # a list operation answers a list (or a list at `records`): an error object is not records
            empty = empty_answer(answer.value, answer.response.status, self.client.services.mask(url))
            if empty is not None:
                raise FlowRuntimeError(empty, "data")
            return records_of(answer.value if model.records else value, model.records,
                              self.client.services.mask(url), self.client.services.mask)
        return value

    async def send(self, op: str, record: Value, args: list[Value], kwargs: dict[str, Value]) -> Value:
        model = self.operation(op)
        if model.batch is not None:
            outcome = (await self.send_batch(op, [record], args, kwargs))[0]
            if not outcome.ok:
                raise FlowRuntimeError(outcome.error or "the API refused the record", "connector",
                                       status=outcome.status)
            return outcome.result
        url, headers = self.request_parts(model, kwargs, record)
        given = kwargs.get("idempotency_key")
        key = idempotency_key_of(given) if given is not None else record_template(model.idempotency_key, record) \
            if model.idempotency_key and isinstance(record, dict) else None
        sent = without_path_fields(model, record, kwargs)
        body = {model.envelope: sent} if model.envelope and sent is not None else sent
        answer = await self.client.request(model.method, url, headers=headers, body=body,
                                           changes_data=not model.safe, idempotency_key=key, form=self.form(model))
        return path_get(answer.value, model.result) if model.result and answer.response is not None \
            else answer.value

    async def send_batch(self, op: str, records: list[Value], args: list[Value], kwargs: dict[str, Value]
                         ) -> list[SendOutcome]:
        model = self.operation(op)
        batch = model.batch
        if batch is None:
            return await super().send_batch(op, records, args, kwargs)
        outcomes: list[SendOutcome] = []
        for start in range(0, len(records), batch.max):
            chunk = records[start : start + batch.max]
            url, headers = self.request_parts(model, kwargs)
            # each record in its envelope, as a single send's: HubSpot's {"inputs": [{"properties": ...}]}
            sent = [{model.envelope: r} for r in chunk] if model.envelope else chunk
            body: Any = {batch.body: sent} if batch.body else sent
            try:
                answer = await self.client.request(model.method, url, headers=headers, body=body,
                                                   changes_data=not model.safe)
            except FlowRuntimeError as e:  # this request's records fail; those the requests before took stay sent
                outcomes.extend(SendOutcome(False, error=e.message, status=e.status, uncertain=e.uncertain)
                                for _ in chunk)
                continue
            if answer.response is None:  # dry run: nothing was sent
                outcomes.extend(SendOutcome(True, None) for _ in chunk)
                continue
            results = path_get(answer.value, batch.results) if batch.results else answer.value
            if not isinstance(results, list) or len(results) != len(chunk):
                found = ("nothing" if results is None else str(len(results)) if isinstance(results, list)
                         else f"{article(type_name(results))} {type_name(results)}")
                if isinstance(answer.value, str) and answer.value:
                    found += " (the answer is text, not JSON)"
                mask = self.client.services.mask
                # what the API said instead ({"error": "invalid token"} with 200), masked and cut
                shown = cut(dumps(mask_value(answer.value, mask)), BODY_SHOWN, mask)
                message = (f"{self.name}.{op}: the answer does not hold one result per record "
                           f"(expected {len(chunk)} at {batch.results or 'the body'}, found {found}); the API "
                           f"may have taken some of the batch's records, so check them before a retry: {shown}")
                outcomes.extend(SendOutcome(False, error=message, uncertain=True) for _ in chunk)
                continue
            for result in results:
                refused = batch_refusal(result, batch.ok, batch.error, self.client.services.mask)
                outcomes.append(SendOutcome(True, result) if refused is None else  # which send said it: the API's
                                SendOutcome(False, result, f"{self.name}.{op} refused the record: {refused}"))
        return outcomes

    async def close(self) -> None:
        await self.client.close()

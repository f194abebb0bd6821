"""Form encoding (application/x-www-form-urlencoded) and the text of a value in a query string or
form field: one home for both, used by the HTTP connector and the url_encode() builtin."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flowlang.errors import FlowRuntimeError
from flowlang.runtime.blob import Blob
from flowlang.runtime.jsoncodec import binary_refused
from flowlang.runtime.values import Secret, to_text


class FormError(ValueError):
    """A value that cannot be form fields."""


def query_value(value: Any) -> str:
    """true/false, numbers in plain notation, datetimes in ISO 8601, secrets revealed (for the request)."""
    if isinstance(value, Secret):
        return value.reveal()
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is bytes or type(value) is Blob:  # its text `<N bytes>` would stand in for the data
        raise FlowRuntimeError(binary_refused(value, "a query parameter or a form field"), "data")
    return to_text(value)


PARAM_STYLES = ("repeat", "brackets", "indices", "comma")


def list_name(prefix: str, index: int, style: str) -> str:
    """The field name of a list's item: the list's own (repeat: tags=a&tags=b), with [] (brackets:
    tags[]=a, as Rails, PHP and Stripe read lists) or with its index (indices: tags[0]=a)."""
    if style == "brackets":
        return f"{prefix}[]"
    if style == "indices":
        return f"{prefix}[{index}]"
    return prefix


def form_pairs(value: Any, prefix: str = "", style: str = "repeat") -> list[tuple[str, str]]:
    """An object as form fields: nested objects as a[b]=..., lists of objects as a[0][b]=..., lists of
    plain values repeat the name (a=1&a=2; `style` "brackets" gives a[]=1&a[]=2, "indices" a[0]=1&a[1]=2,
    "comma" a=1,2),
    nulls are left out (the Stripe and PHP convention). An empty
    object or list inside the body is the field with an empty value (metadata=): Stripe's way of
    clearing a field, which leaving it out could not say. A list's nulls are no items, so a list of
    nulls alone is an empty list (tags=), never a field lost without a word."""
    pairs: list[tuple[str, str]] = []
    if prefix and isinstance(value, dict | list) and not value:
        pairs.append((prefix, ""))
    elif isinstance(value, dict):
        for k, v in value.items():
            pairs.extend(form_pairs(v, f"{prefix}[{k}]" if prefix else str(k), style))
    elif isinstance(value, list):
        if any(isinstance(v, dict | list) for v in value):
            for i, v in enumerate(value):
                pairs.extend(form_pairs(v, f"{prefix}[{i}]", style))
        elif style == "comma":  # one field of the values joined (opt_fields=name,notes: Asana, GitHub)
            pairs.append((prefix, ",".join(query_value(v) for v in value if v is not None)))
        else:
            items = [(list_name(prefix, i, style), query_value(v))
                     for i, v in enumerate(v for v in value if v is not None)]
            pairs.extend(items or [(prefix, "")])
    elif value is not None:
        if not prefix:
            raise FormError("a form body must be an object of fields")
        pairs.append((prefix, query_value(value)))
    return pairs


def form_encode(value: Any, style: str = "repeat") -> str:
    """application/x-www-form-urlencoded text of an object (spaces as +); `style` as in form_pairs."""
    if not isinstance(value, dict):
        raise FormError("a form body must be an object of fields")
    return urlencode(form_pairs(value, style=style))

"""Operation names by the convention of CONNECTORS.md (`list_`, `get_`, `find_`, `create_`, `update_`,
`delete_`), derived from the method and the path, with the operationId as the last resort; names that
would clash are made longer with the parent resources until each is unique."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

VERSION = re.compile(r"^(v\d+[a-z0-9.]*|api|rest|\d+(\.\d+)*|\d{4}-\d{2}(-\d{2})?)$", re.IGNORECASE)
PARAM = re.compile(r"^\{[^}]+\}$")
DOT_VERBS = {"list": "list", "info": "get", "get": "get", "create": "create", "add": "create",
             "update": "update", "delete": "delete", "remove": "delete", "search": "find"}
IDENT_BAD = re.compile(r"[^A-Za-z0-9]+")
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake(text: str) -> str:
    """'listForRepo', 'issues/list-for-repo', 'filter[email]' -> list_for_repo, ... ."""
    text = CAMEL.sub("_", text)
    text = IDENT_BAD.sub("_", text).strip("_").lower()
    text = re.sub(r"_+", "_", text)
    if not text:
        return "op"
    return text if not text[0].isdigit() else "n_" + text


def singular(word: str) -> str:
    head, _, last = word.rpartition("_")
    if last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith(("sses", "shes", "ches", "xes", "uses")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")) and len(last) > 2:
        last = last[:-1]
    return f"{head}_{last}" if head else last


def plural_looking(word: str) -> bool:
    return word.endswith("s") and not word.endswith(("ss", "us", "is"))


@dataclass
class Shape:
    """What a path says: its resource segments (name, whether a parameter follows) and the verb."""

    verb: str
    resources: list[tuple[str, bool]]  # (snake name, followed by a parameter)


def shape(method: str, path: str, is_list: bool) -> Shape:
    parts = [p for p in path.split("/") if p]
    resources: list[tuple[str, bool]] = []
    for part in parts:
        if PARAM.match(part) or (part.startswith("{") and "}" in part):
            if resources:
                resources[-1] = (resources[-1][0], True)
            continue
        part = re.sub(r"\.(json|xml)$", "", part)
        if VERSION.match(part) and not resources:
            continue
        resources.append((part, False))
    trailing_param = bool(parts) and parts[-1].startswith("{")
    verb = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "update",
            "DELETE": "delete"}[method]
    if not resources:
        return Shape(verb, [("root", False)])
    last, _ = resources[-1]
    if "." in last and not trailing_param:  # Slack style: /conversations.list
        thing, _, action = last.rpartition(".")
        mapped = DOT_VERBS.get(action.lower())
        name = snake(thing)
        if mapped:
            verb = mapped
            resources[-1] = (name, verb != "list")
        else:
            verb = ""
            resources[-1] = (snake(last), False)
        return Shape(verb, [(snake(n), f) for n, f in resources])
    resources = [(snake(n), f) for n, f in resources]
    if method == "GET" and resources[0][0] == "search" and len(resources) > 1:  # GitHub: /search/issues
        return Shape("find", [(n, True) for n, _ in resources[1:]])
    last = resources[-1][0]
    if last == "search":
        resources = resources[:-1] or [("search", False)]
        if resources[0][0] == "search" and len(resources) > 1:
            resources = resources[1:]
        return Shape("find", [(n, True) for n, _ in resources])
    if method == "GET" and not trailing_param and (is_list or plural_looking(last)):
        return Shape("list", resources)
    if method == "POST" and trailing_param:
        return Shape("update", resources)
    raw_last = [p for p in parts if not p.startswith("{")][-1] if parts else ""
    if method == "POST" and len(resources) > 1 and resources[-2][1] and (
            not plural_looking(last) or re.search(r"[a-z][A-Z]", raw_last)):
        # an action on one thing: POST /invoices/{invoice}/pay -> pay_invoice
        action = resources.pop()[0]
        return Shape(action, resources)
    if method in ("GET", "HEAD", "PUT", "PATCH", "DELETE") and not trailing_param:
        resources[-1] = (last, True)
    return Shape(verb, resources)


def candidates(s: Shape) -> list[str]:
    """Names from the shortest (verb_thing) to the longest (verb_parent_..._thing)."""
    words = []
    for i, (name, followed) in enumerate(s.resources):
        last = i == len(s.resources) - 1
        if last and s.verb == "list":
            words.append(name)
        elif last:
            words.append(singular(name) if followed or s.verb in ("create", "find") else name)
        else:
            words.append(singular(name) if followed else name)
    out = []
    for k in range(1, len(words) + 1):
        tail = "_".join(words[-k:])
        out.append(f"{s.verb}_{tail}" if s.verb else tail)
    return out


def assign(items: Sequence[tuple[str, str, str, bool]]) -> list[str]:
    """(method, path, operationId, is_list) -> one unique name each, in order."""
    options = [candidates(shape(m, p, is_list)) for m, p, _, is_list in items]
    ids = [snake(op_id) if op_id else "" for _, _, op_id, _ in items]
    level = [0] * len(items)

    def name_of(i: int) -> str:
        opts = options[i]
        if level[i] < len(opts):
            return opts[level[i]]
        return ids[i] or opts[-1]

    for _ in range(12):
        names = [name_of(i) for i in range(len(items))]
        seen: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            seen.setdefault(name, []).append(i)
        clashes = [group for group in seen.values() if len(group) > 1]
        if not clashes:
            return names
        moved = False
        for group in clashes:
            movable = [i for i in group if level[i] < len(options[i]) - 1]
            # the ones that can take a longer name do; one that cannot keeps the short one
            for i in movable or [i for i in group if level[i] < len(options[i])]:
                level[i] = level[i] + 1 if movable else len(options[i])
                moved = True
        if not moved:
            break
    names = [name_of(i) for i in range(len(items))]
    used: dict[str, int] = {}
    final = []
    for name in names:
        n = used.get(name, 0)
        used[name] = n + 1
        final.append(name if n == 0 else f"{name}_{n + 1}")
    return final

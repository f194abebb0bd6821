"""Golden files: AST dumps of representative flows and the rendered text of diagnostics."""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

import flowlang
from conftest import ROOT
from flowlang import ast
from flowlang.source import Source
from flowlang.syntax import parse

AST_CASES = {
    "expressions": 'let x = if a ?? b then -c * (d + 1) else not e in [1, 2,] and f("{g.h[0]} {i}")\n',
    "statements": """flow "All"
param since = job.last_success_at ?? "2024-01-01"
use api = http(base_url: env.API, auth: bearer(secret.TOKEN))
call api.get("/orders", query: {since: since}) as orders
for each o, i in orders parallel 4
  lookup api.get('/customers/{id}', id: o.customer) as c
  map o to out
    ...o
    customer.name = c.name
    drop secret
    end = o.period.end
  end
  if out.total <= 0
    skip
  else if out.total > 1000
    log warn "big order {o.id}"
  else
    stop
  end
  try
    send out to api.post("/invoices") as res batch 10
  on error as e
    fail e.message
  end
  emit {k: v for k, v in items(out) if v != null}
end
function f(a, b = 1)
  return a + b
end
import "lib.flow"
run "next.flow" with {since: since}
""",
}

DIAGNOSTIC_CASES = {
    "unknown_name": "let customer = 1\nemit custmer\n",
    "missing_end": "for each x in [1]\n  if x\n    emit x\n  end\n",
    "bad_config": 'use f = file(pth: "x.csv")\ncall f.reed()\n',
    "arity": "emit round(1, 2, 3)\nemit lower()\n",
    "interpolation": 'emit "total: {order.total +}"\n',
    # issue 16: the mistakes a newcomer makes, each explained (and one diagnostic for a near miss)
    "assign_in_condition": "let x = 1\nif x = 1\n  emit x\nend\n",
    "elif": "let x = 1\nif x == 1\n  emit x\nelif x == 2\n  emit 2\nend\n",
    "python_for": "let rows = [1]\nfor row in rows:\n  emit row\nend\n",
    "colon_after_header": "for each row in [1]:\n  emit row\nend\n",
    "unclosed_brace": "let x = {a: 1,\n  b: 2\nemit x\n",
    "unclosed_bracket_at_end": "emit [1,\n  2\n",
    "double_quotes_in_interpolation": 'let o = {id: 1}\nemit "id: {o["id"]}"\n',
    "lookup_without_as": 'use api = http(base_url: "http://x")\nfor each o in [1]\n  lookup api.get("/c")\nend\n',
    "operation_in_expression": 'use f = file(path: "in.json")\nfor each r in f.read()\n  emit r\nend\n',
    "binding_operation_in_expression": "for each o in input\n  let c = crm.find(o.id)\nend\n",
    "python_method": 'let o = {email: "A"}\nemit o.email.lower()\n',
    "near_miss_config_key": 'use f = file(pth: "x.csv")\n',
    "near_miss_operation_keyword": 'use db = sql(url: "sqlite:///x.db")\n'
                                   'send {a: 1} to db.upsert(tabel: "t", key: "a")\n',
    "near_miss_builtin_keyword": "emit round(1.5, place: 1)\n",
    "near_miss_function_keyword": "function f(total, rate = 1)\n  return total * rate\nend\nemit f(totl: 1)\n",
    # a literal pages: spec is checked before the run: did-you-mean, the caret under the key or the value
    "pages_style": 'use api = http(base_url: "http://x")\ncall api.get("/a", pages: {style: "cursr"}) as a\n',
    "pages_keys": 'use api = http(base_url: "http://x")\n'
                  'call api.get("/b", pages: {style: "cursor", curser: "next", record: "data"}) as b\n',
    "pages_needs": 'use api = http(base_url: "http://x")\n'
                   'call api.get("/c", pages: {style: "next_url", size: "ten"}) as c\n',
}


@pytest.mark.parametrize("name", sorted(AST_CASES))
def test_ast_dump(name: str, snapshot: SnapshotAssertion) -> None:
    source = Source(f"{name}.flow", AST_CASES[name])
    assert ast.dump(parse(source), source) == snapshot


@pytest.mark.parametrize("name", sorted(DIAGNOSTIC_CASES))
def test_rendered_diagnostics(name: str, snapshot: SnapshotAssertion) -> None:
    with pytest.raises(flowlang.ScriptError) as info:
        flowlang.compile(DIAGNOSTIC_CASES[name], name=f"{name}.flow", bindings=())
    assert info.value.render() == snapshot


def test_example_flows_dump(snapshot: SnapshotAssertion) -> None:
    path = ROOT / "examples/clean_orders/clean_orders.flow"
    source = Source("clean_orders.flow", path.read_text())
    assert ast.dump(parse(source), source) == snapshot

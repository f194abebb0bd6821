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

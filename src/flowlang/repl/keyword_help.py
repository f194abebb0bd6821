"""`:help WORD` for the words of the language: each statement's form and what it does (LANGUAGE.md 3-4,
docs/language.md), and the names every flow has (`secret`, `env`, `job`, `state`, `input`)."""

from __future__ import annotations

KEYWORD_HELP: dict[str, tuple[str, str]] = {
    "flow": ('flow "Name"', "the flow's name, on its first line (default: the file's stem)"),
    "param": ("param name [= expr]", "a run parameter, given with --param name=value (JSON, else text); one "
              "without a default that is not given stops the run before anything runs"),
    "use": ("use name = connector(key: value, ...)", "open a connection (:connectors lists the connectors)"),
    "let": ("let target = expr", "bind a variable, or assign into a field of one: let order.status = \"done\""),
    "call": ("call conn.op(args) [as name]", "run an operation and keep its result; a list operation gives a "
             "record stream"),
    "lookup": ("lookup conn.op(args) as name", "the first record of the answer, or null when there is none (a "
               "404 is null); identical lookups in one run are answered from a cache"),
    "send": ("send expr to conn[.op[(args)]] [key expr] [once | if changed] [as name] [batch N]",
             "write records to a destination; a list sends each item"),
    "map": ("map expr to name ... end", "build a new object from lines path = expr, ...expr (copy the fields of "
            "an object) and drop path"),
    "if": ("if c ... else if c ... else ... end", "a conditional block; as a value: if c then a else b"),
    "for": ("for each x[, y] in expr [key expr] [parallel N] ... end", "a loop over a list, a record stream or "
            "an object's keys; an error in an iteration fails that record, not the run"),
    "each": ("for each x in expr ... end", "see :help for"),
    "skip": ("skip", "go on with the next iteration of the loop"),
    "stop": ("stop", "leave the loop"),
    "fail": ("fail expr", "raise an error with that message (inside a loop it fails the record)"),
    "try": ("try ... on error [as e] ... end", "handle an error: e.message, e.kind, e.status, e.body, e.line"),
    "emit": ("emit expr", "an output of the flow (a non-empty list of objects emits each object)"),
    "log": ("log [debug|info|warn|error] expr", "a log line (default info)"),
    "function": ("function name(a, b = 1) ... return expr ... end", "a function, callable in expressions"),
    "return": ("return expr", "the value of a function"),
    "import": ('import "path.flow"', "the functions and use connections of another file"),
    "run": ('run "other.flow" [with {params}]', "run another flow after this point, as its own job"),
    "secret": ("secret.NAME", "a secret, from the --secrets file or the environment variable NAME; shown as ***"),
    "env": ("env.NAME", "an environment variable (text), or null"),
    "job": ("job.id, job.flow, job.started_at, job.last_success_at, job.dry_run, job.params",
            "the current run"),
    "state": ("state", "this flow's object persisted between runs; committed when a run ends without a "
              "run-level error"),
    "input": ("input", "the payload that started the run (--input, a webhook's body, run(input=...)), or null"),
}

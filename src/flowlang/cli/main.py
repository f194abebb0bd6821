"""`flowlang`: the entry point. Parse the command line, run the command, report an error that ends it
and exit with its status (the statuses and their mapping live in flowlang.status).

A mistake in a script or on the command line never shows a Python traceback (--debug does).

Start-up time counts (`flowlang --version`, a short `flowlang run`): this module imports little at
the top, and each command's module is imported when that command runs.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing (and re) costs more than this module

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

    from flowlang.cli.argparser import Parser
    from flowlang.cli.console import Terminal

    Command = Callable[[argparse.Namespace, Terminal], int]


def build_parser(only: str | None = None) -> Parser:
    """The command line; with `only`, of that command alone (see argparser.Subcommands)."""
    from flowlang import __version__
    from flowlang.cli.argparser import (
        Parser,
        Subcommands,
        add_completion_parser,
        add_examples,
        at_least,
        error_id,
        seconds,
    )

    parser = Parser(prog="flowlang", description="Run, check and explore .flow scripts.")
    parser.add_argument("--version", action="version", version=f"flowlang {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=Subcommands)
    assert isinstance(sub, Subcommands)
    sub.only = only
    parser.commands = sub

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--debug", action="store_true", help="show Python tracebacks and debug logs")
        p.add_argument("--log-format", choices=("auto", "text", "json"), default="auto",
                       help="stderr logs as text or JSON lines (auto: JSON when stderr is not a terminal)")
        p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                       help="colour on stderr (auto: on a terminal, unless NO_COLOR is set; FORCE_COLOR "
                       "forces it)")

    def running(p: argparse.ArgumentParser) -> None:
        p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a flow param (the value is read as JSON, else as a string)")
        p.add_argument("--state-dir", help="where jobs, state and errors are kept (default: .flowlang/ beside "
                       "the flow; also FLOWLANG_STATE_DIR)")
        p.add_argument("--secrets", metavar="FILE", help="a TOML file of secrets (NAME = \"value\")")
        p.add_argument("--config", metavar="FILE", help="the project file (default: the flowlang.toml nearest the "
                       "flow): secret providers and alerts")

    run = sub.add_parser("run", help="run a flow: records on stdout, logs and summary on stderr")
    run.add_argument("file", help="the flow file, or - to read it from stdin")
    running(run)
    run.add_argument("--input", metavar="FILE", help="the input payload: a JSON or .jsonl file, or - for stdin")
    run.add_argument("--dry-run", action="store_true", help="read, but send nothing and commit no state")
    run.add_argument("--limit", type=int, metavar="N",
                     help="take at most N records per loop (an inner loop over a record's own list, its lines, "
                          "runs whole), for a try: its writes are real "
                          "(sent, written); a test job, so no state is committed")
    run.add_argument("--max-seconds", type=seconds, metavar="S",
                     help="stop the run after S seconds (in-flight records finish; exit 1)")
    run.add_argument("--max-record-seconds", type=seconds, metavar="S",
                     help="a loop iteration that takes longer fails that record")
    run.add_argument("--max-call-depth", type=at_least(1), default=100, metavar="N",
                     help="how deep functions may call each other (default 100)")
    run.add_argument("--max-error-bytes", type=at_least(0), default=1_000_000, metavar="N",
                     help="the most one failed record keeps in the error store (its record and the variables "
                     "it reads; the largest variables are left out past it, with a note; 0: no cap; "
                     "default 1000000)")
    run.add_argument("--metrics-file", metavar="FILE",
                     help="write the run's figures in Prometheus text format to FILE at the end (for node "
                     "exporter's textfile collector)")
    run.add_argument("--resume", action="store_true",
                     help="continue the last run, if it crashed, failed or was interrupted, from the checkpoint of its "
                     "paginated read (else start from the beginning)")
    run.add_argument("--quiet", action="store_true", help="no progress display, no summary")
    run.add_argument("--record", metavar="DIR", help="run for real and write every exchange into a cassette "
                     "in DIR (DIR/cassette.jsonl; secrets masked) for flowlang test")
    common(run)

    ledger = sub.add_parser("ledger", help="what send ... once / if changed recorded as sent; forget keys, or "
                            "mark one cut off in flight as sent")
    ledger.add_argument("file")
    ledger.add_argument("--state-dir")
    ledger.add_argument("--key", metavar="K", help="only this record key")
    ledger.add_argument("--forget", metavar="K", help="forget this key (every operation, or that of --to): the next "
                        "run sends it again")
    ledger.add_argument("--all", action="store_true", help="forget every key of the flow")
    ledger.add_argument("--sent", metavar="K", help="a send of this key cut off in flight did arrive: record it as "
                        "sent, so that flowlang retry finishes its record without sending it again")
    ledger.add_argument("--to", metavar="DEST", help="only the entries of this destination, as the listing names it "
                        "(db.insert, 'api.post /orders'): --forget K --to DEST forgets, and --sent K --to DEST marks, "
                        "the key's send to DEST alone")
    ledger.add_argument("--json", action="store_true", help="one JSON object per entry on stdout (with --forget, "
                        "--all or --sent: one object saying what changed)")
    common(ledger)

    plan = sub.add_parser("plan", help="read for real, write nothing: what a run would send, and how long "
                          "it would take under the rate limits")
    plan.add_argument("file")
    running(plan)
    plan.add_argument("--input", metavar="FILE", help="the input payload: a JSON or .jsonl file, or - for stdin")
    plan.add_argument("--limit", type=int, metavar="N",
                      help="take at most N records per loop (an inner loop over a list in memory runs whole)")
    plan.add_argument("--json", action="store_true", help="the plan as one JSON object on stdout, every payload")
    common(plan)

    test = sub.add_parser("test", help="replay flows offline against recorded cassettes; exit 1 if one differs")
    test.add_argument("path", help="a flow file (with --cassette), or a folder of test folders (<name>/flow.toml)")
    test.add_argument("--cassette", metavar="DIR", help="the cassette folder to replay a flow file against")
    test.add_argument("--update", action="store_true",
                      help="accept what the replay did: rewrite the cassette's expected writes and outputs")
    test.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                      help="a flow param (default: the params the cassette was recorded with)")
    common(test)

    check = sub.add_parser("check", help="parse and check flows without running them (exit 0 or 2)")
    check.add_argument("files", nargs="+", metavar="PATH",
                       help="flow files, folders (every .flow file under them) or - for stdin")
    check.add_argument("--format", choices=("text", "json", "github"), default="text", dest="output_format",
                       help="text (default); json: one object per diagnostic on stdout; github: workflow "
                       "annotations on stdout for GitHub Actions")
    check.add_argument("--secrets", metavar="FILE", help="also verify every secret the flows read is found "
                       "(in FILE, the environment or a provider of flowlang.toml); a missing one is an error")
    check.add_argument("--config", metavar="FILE", help="the project file for --secrets (default: the "
                       "flowlang.toml nearest each flow)")
    common(check)

    fmt = sub.add_parser("fmt", help="indent flows the standard way (2 spaces a block), in place")
    fmt.add_argument("files", nargs="+", metavar="PATH",
                     help="flow files, folders (every .flow file under them) or - (stdin to stdout)")
    fmt.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    common(fmt)

    from flowlang.cli.store_commands import add_parsers as add_store_parsers

    add_store_parsers(sub, common)

    retry = sub.add_parser("retry", help="run failed iterations again (a job of kind retry; files in overwrite "
                           "mode are appended to); resolve those that succeed. Exit 0 all resolved, 3 some "
                           "still fail, 1 some cannot be replayed")
    retry.add_argument("file")
    retry.add_argument("--id", type=error_id, action="append", default=[], help="only this error (repeatable)")
    retry.add_argument("--dry-run", action="store_true", help="show what each replay would send; change nothing")
    retry.add_argument("--quiet", action="store_true", help="no progress display")
    retry.add_argument("--metrics-file", metavar="FILE",
                       help="write the retry's figures in Prometheus text format to FILE at the end, as run's "
                       "(its job's kind is the label kind=\"retry\"; give it a file of its own)")
    running(retry)
    common(retry)

    conns = sub.add_parser("connectors", help="list connectors, or show one's configuration and operations; "
                           "connectors import SPEC --name NAME, connectors verify NAME --spec SPEC, connectors schema")
    conns.add_argument("name", nargs="?")
    conns.add_argument("--dir", default=".", help="a flow folder whose connectors/ to include (default: .)")
    common(conns)

    from flowlang.cli.secrets_command import add_parser as add_secrets

    add_secrets(sub, common)
    from flowlang.cli.connectors_tools import add_parsers as add_connector_tools

    add_connector_tools(sub, common)

    from flowlang.cli.serve_commands import add_parsers

    add_parsers(sub, common)
    from flowlang.cli.editor_commands import add_parsers as add_editor_parsers

    add_editor_parsers(sub, common)

    repl = sub.add_parser("repl", help="an interactive session (reads statements from stdin when piped)")
    repl.add_argument("file", nargs="?")
    running(repl)
    common(repl)
    add_completion_parser(sub)
    add_examples(parser)
    return parser


def commands() -> dict[str, Command]:
    """Each subcommand's function, imported when a command runs (`--help` stays fast)."""
    from flowlang.cli import commands as c
    from flowlang.cli import secrets_command, serve_commands
    from flowlang.cli.editor_commands import COMMANDS as EDITOR_COMMANDS
    from flowlang.cli.store_commands import COMMANDS

    def repl(args: argparse.Namespace, terminal: Terminal) -> int:
        from flowlang.repl.main import repl_main  # the entry point is the one place above both cli/ and repl/

        return int(repl_main(args, terminal))

    def completion(args: argparse.Namespace, terminal: Terminal) -> int:
        from flowlang.cli.argparser import completion_script
        from flowlang.status import ExitStatus

        terminal.out(completion_script(build_parser(), args.shell).rstrip("\n"))
        return int(ExitStatus.OK)

    return {**COMMANDS, **EDITOR_COMMANDS, "run": c.cmd_run, "check": c.cmd_check, "retry": c.cmd_retry,
            "connectors": c.cmd_connectors, "repl": repl, "fmt": c.cmd_fmt,
            "secrets": secrets_command.cmd_secrets, "test": c.cmd_test,
            "serve": serve_commands.cmd_serve, "inbox": serve_commands.cmd_inbox,
            "plan": c.cmd_plan, "ledger": c.cmd_ledger, "completion": completion,
            "connectors-import": c.cmd_connectors_import, "connectors-verify": c.cmd_connectors_verify}


def setup_logging(terminal: Terminal, args: argparse.Namespace) -> bool:
    """Route flowlang's loggers to stderr; returns whether logs are JSON lines."""
    import logging

    from flowlang.cli.console import TerminalLogHandler

    fmt = getattr(args, "log_format", "auto")
    json_lines = fmt == "json" or (fmt == "auto" and not terminal.rich)
    if fmt == "json":  # asked for: every stderr line of any command is one JSON object (OPERATIONS.md 10)
        terminal.json_lines = True
    handler = TerminalLogHandler(terminal, json_lines)
    root = logging.getLogger("flowlang")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if getattr(args, "debug", False) else logging.INFO)
    root.propagate = False
    logging.captureWarnings(True)  # library warnings become log lines too (JSON when logs are JSON)
    for library in ("py.warnings", "httpx", "httpcore", "aiohttp", "asyncio", "sqlalchemy", "psycopg", "pymysql"):
        logger = logging.getLogger(library)
        logger.setLevel(logging.WARNING)
        logger.handlers[:] = [handler]
        logger.propagate = False
    return json_lines


def main(argv: Sequence[str] | None = None, terminal: Terminal | None = None) -> int:
    status = _main(argv, terminal)
    if argv is None:  # the program (not a caller in Python), and it ends now
        import gc

        # The interpreter's garbage collections at exit walked every object the process made (the
        # modules, the parser's tables): ~50 ms of CPU of a short run. What the command opened it has
        # closed, so they are left to the OS (gc.freeze: no collection looks at them again).
        gc.freeze()
        watchdog = sys.modules.get("flowlang.runtime.watchdog")  # not imported: no signal was handled
        if watchdog is not None:  # (importing it would cost `flowlang --version` 20 ms)
            watchdog.end_without_stuck_threads(status)
    return status


def _main(argv: Sequence[str] | None, terminal: Terminal | None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["--version"]:  # what argparse would answer, without building every subcommand
        from flowlang import __version__

        (terminal.stdout if terminal else sys.stdout).write(f"flowlang {__version__}\n")
        return 0
    from contextlib import redirect_stderr, redirect_stdout

    from flowlang.cli.connectors_tools import rewrite
    from flowlang.cli.console import Terminal
    from flowlang.status import ExitStatus, exit_status

    terminal = terminal or Terminal()
    words = rewrite(words)
    command = words[0] if words and not words[0].startswith("-") else None
    parser = build_parser(command)
    if command is not None and (parser.commands is None or command not in parser.commands.choices):
        parser = build_parser()  # a mistyped command: the message lists every command
    try:
        with redirect_stdout(terminal.stdout), redirect_stderr(terminal.stderr):  # argparse writes there
            args = parser.parse_args(words)
    except SystemExit as e:
        return int(e.code or 0) if e.code in (0, None) else int(ExitStatus.INVALID)
    if not args.command:
        parser.print_help(terminal.stderr)
        return int(ExitStatus.INVALID)
    terminal.use_color(getattr(args, "color", "auto"))
    args.json_logs = setup_logging(terminal, args)
    debug = bool(getattr(args, "debug", False))
    try:
        return int(commands()[args.command](args, terminal))
    except BrokenPipeError as e:  # stdout went away (`| head`): end quietly (OPERATIONS.md 9)
        if not terminal.closed:
            terminal.stdout_gone()
        return int(exit_status(e))
    except KeyboardInterrupt as e:
        terminal.error("interrupted")
        return int(exit_status(e))
    except Exception as e:
        report_error(terminal, e, debug)
        return int(exit_status(e))


def report_error(terminal: Terminal, error: Exception, debug: bool) -> None:
    """What the user sees of an error that ended a command (a traceback only with --debug)."""
    import traceback

    from flowlang.errors import FlowError, FlowRuntimeError, LockedError, ScriptError

    if isinstance(error, ScriptError):
        if terminal.json_lines:  # one JSON object a mistake, with its place (OPERATIONS.md 10)
            for diagnostic in sorted(error.diagnostics, key=lambda d: (d.source.name, d.span.start)):
                terminal.message(diagnostic.render(), "bold red",
                                 {"location": diagnostic.source.location(diagnostic.span)})
        else:
            terminal.message(error.render())
        count = len(error.diagnostics)
        terminal.error(f"{count} error{'s' if count != 1 else ''}; nothing was run")
        return
    if isinstance(error, LockedError):
        terminal.error(f"error: {error.message}")
        return
    if isinstance(error, FlowRuntimeError):
        terminal.message(error.render())
    elif isinstance(error, FlowError):
        terminal.error(f"error: {error.message}")
    elif isinstance(error, OSError):  # the system refused (a full disk under a redirected output), not a bug
        terminal.error(f"error: {error}")
    elif isinstance(error, MemoryError):  # the process's limit, not a bug
        terminal.error("error: out of memory: the process could get no more memory (a limit such as "
                       "ulimit -v or a container's, or the machine's memory)")
    else:  # a bug in flowlang: say so plainly
        terminal.error(f"internal error: {type(error).__name__}: {error}")
        if not debug:
            terminal.message("this is a bug in flowlang; run again with --debug for the traceback and report it")
    if debug:
        terminal.message("".join(traceback.format_exception(error)))

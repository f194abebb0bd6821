"""The command line's conventions (httpie, ruff, git): no prefix matching of options (`--dry` is not
`--dry-run`), did-you-mean for a mistyped command or choice, examples at the end of every `--help`,
and shell completion scripts (shtab)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import IO, Any, NoReturn

# Each command's examples, shown under its --help (one home; `test_cli_conventions` checks every
# command has some).
EXAMPLES: dict[str, list[str]] = {
    "": ["flowlang run orders.flow --param since=2024-05-01", "flowlang check flows/",
         "flowlang repl", "flowlang completion bash > ~/.local/share/bash-completion/completions/flowlang"],
    "run": ["flowlang run orders.flow", "flowlang run orders.flow --param since=2024-05-01 --dry-run",
            "flowlang run orders.flow --limit 10 > sample.jsonl", "cat job.flow | flowlang run -",
            "flowlang run orders.flow --input payload.json --secrets secrets.toml"],
    "check": ["flowlang check orders.flow", "flowlang check flows/", "flowlang check - < orders.flow",
              "flowlang check flows/ --format github   # annotations in a GitHub Actions job",
              "flowlang check orders.flow --secrets secrets.toml   # also: are its secrets there?"],
    "fmt": ["flowlang fmt orders.flow", "flowlang fmt flows/ --check", "flowlang fmt - < orders.flow"],
    "plan": ["flowlang plan orders.flow", "flowlang plan orders.flow --json | jq .sends"],
    "test": ["flowlang test tests/", "flowlang test orders.flow --cassette tests/orders",
             "flowlang test tests/ --update"],
    "ledger": ["flowlang ledger orders.flow", "flowlang ledger orders.flow --forget 1042"],
    "errors": ["flowlang errors orders.flow", "flowlang errors orders.flow --group",
               "flowlang errors orders.flow --json"],
    "resolve": ["flowlang resolve orders.flow 3 4 --reason 'fixed by hand'",
                "flowlang resolve orders.flow --all --match timeout"],
    "edit": ["flowlang edit orders.flow 3 --set 'email=\"a@example.com\"' --unset _extra"],
    "jobs": ["flowlang jobs orders.flow", "flowlang jobs orders.flow --last 5 --json"],
    "state": ["flowlang state orders.flow", "flowlang state orders.flow --last-success-at 2024-05-01T00:00:00Z",
              "flowlang state orders.flow --reset"],
    "retry": ["flowlang retry orders.flow", "flowlang retry orders.flow --id 3 --dry-run"],
    "connectors": ["flowlang connectors", "flowlang connectors http",
                   "flowlang connectors import openapi.json --name shop",
                   "flowlang connectors verify shop --spec openapi.json", "flowlang connectors schema"],
    "connectors-import": ["flowlang connectors import openapi.json --name shop",
                          "flowlang connectors import https://example.com/openapi.yaml --name shop --tag orders"],
    "connectors-verify": ["flowlang connectors verify shop --spec openapi.json"],
    "connectors-schema": ["flowlang connectors schema > connector.schema.json"],
    "lsp": ["flowlang lsp   (started by the editor: see docs/editors.md)"],
    "graph": ["flowlang graph orders.flow", "flowlang graph orders.flow --format dot | dot -Tpng > orders.png",
              "flowlang graph orders.flow --format svg > orders.svg"],
    "secrets": ["flowlang secrets check orders.flow", "flowlang secrets check orders.flow --secrets secrets.toml"],
    "serve": ["flowlang serve flows/", "flowlang serve flows/ --port 8080 --console-token-file token.txt"],
    "inbox": ["flowlang inbox flows/", "flowlang inbox flows/ --failed", "flowlang inbox flows/ --show 12",
              "flowlang inbox flows/ --replay 12"],
    "repl": ["flowlang repl", "flowlang repl orders.flow", "echo '1 + 1' | flowlang repl"],
    "completion": ["flowlang completion bash > ~/.local/share/bash-completion/completions/flowlang",
                   "flowlang completion zsh > ~/.zfunc/_flowlang",
                   "flowlang completion fish > ~/.config/fish/completions/flowlang.fish"],
}

SHELLS = ("bash", "zsh", "fish")


def examples_epilog(command: str) -> str | None:
    lines = EXAMPLES.get(command)
    if not lines:
        return None
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def store_number(text: str) -> int:
    """An argparse type for a whole number the store looks up (an error's or a job's id, a count): a
    number past SQLite's integers is refused here, before it reaches a query (it was an OverflowError)."""
    from flowlang.runtime.store import LARGEST_ID

    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if abs(number) > LARGEST_ID:
        raise argparse.ArgumentTypeError(f"{text} is past the largest number the store holds ({LARGEST_ID})")
    return number


def error_id(text: str) -> int:
    """An argparse type for an error's id: a store_number, also as `flowlang errors` shows it (`#12`, pasted
    from its listing: 'invalid int value: '#12'' before)."""
    if not text.startswith("#"):
        return store_number(text)
    try:
        return store_number(text[1:])
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None


def seconds(text: str) -> float:
    """An argparse type for a time limit: a number of seconds above 0 (0, a negative number or nan
    would fail a run at once or never)."""
    import math

    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"needs a number of seconds above 0, got {text!r}")
    return number


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type for a whole number of at least `low`."""
    def whole_number(text: str) -> int:
        try:
            number = int(text)
        except ValueError:
            number = low - 1
        if number < low:
            raise argparse.ArgumentTypeError(f"needs a whole number of at least {low}, got {text!r}")
        return number
    return whole_number


class Parser(argparse.ArgumentParser):
    """flowlang's parser: options must be spelled out, the examples keep their lines, and a mistyped
    command or choice gets a did-you-mean."""

    commands: Subcommands | None = None  # the COMMAND argument (set by cli.main.build_parser)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        import difflib  # only for a mistake

        found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if found:
            wrong = found.group(1)
            choices = [c for c in re.findall(r"'([^']*)'", found.group(2)) if not c.startswith("connectors-")]
            close = difflib.get_close_matches(wrong, choices, n=1, cutoff=0.5)
            what = "command" if message.startswith(("argument COMMAND", "argument ACTION")) else "choice"
            message = f"no {what} '{wrong}'"
            if close:
                message += f"; did you mean '{close[0]}'?"
            message += f" (one of: {', '.join(choices)})"
        elif message.startswith("unrecognized arguments: "):
            message += self._option_hint(message.removeprefix("unrecognized arguments: ").split())
        self.print_usage(self._stderr())
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._argv = list(args) if args is not None else []
        return super().parse_known_args(args, namespace)

    def _option_hint(self, unknown: list[str]) -> str:
        """An abbreviated option names the one it starts (spelled out in full); else the closest."""
        import difflib
        options = sorted(set(_long_options(self._command_parser())))
        for word in unknown:
            if word.startswith("--"):
                wrong = word.split("=", 1)[0]
                command = self._command_word()
                if wrong in options and command is not None and self._argv.index(word) < self._argv.index(command):
                    return f"; {wrong} is an option of the command: put it after it (flowlang {command} {wrong} ...)"
                started = [o for o in options if o.startswith(wrong)]
                if len(started) == 1:
                    return f"; options are spelled out in full: did you mean {started[0]}?"
                close = difflib.get_close_matches(wrong, options, n=1, cutoff=0.6)
                if close:
                    return f"; did you mean {close[0]}?"
        return ""

    def _command_parser(self) -> argparse.ArgumentParser:
        """The parser of the command being parsed (the first word that names one), else this one."""
        command = self._command_word()
        for action in self._actions:
            if command is not None and isinstance(action, argparse._SubParsersAction):
                found: argparse.ArgumentParser = action.choices[command]
                return found
        return self

    def _command_word(self) -> str | None:
        """The first word of the command line that names a command of this parser."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word in getattr(self, "_argv", []):
                    if word in action.choices:
                        return str(word)
        return None

    @staticmethod
    def _stderr() -> IO[str]:
        import sys

        return sys.stderr


class Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """The COMMAND argument. With `only` set, just that command's parser is built (a run of `flowlang
    run` needs none of the other commands' ~200 options; building them was ~5 ms of every start):
    the others' parsers are stand-ins that take their arguments and keep nothing."""

    only: str | None = None
    choices: dict[str, argparse.ArgumentParser]

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        if self.only is not None and name != self.only:
            return _Unbuilt()
        if kwargs.get("help") == argparse.SUPPRESS:  # a hidden command: no line in --help (Python 3.11
            del kwargs["help"]  # lists one given help=SUPPRESS as '==SUPPRESS==')
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser


class _Unbuilt(argparse.ArgumentParser):
    """A command's parser that this process does not use: its arguments are not made."""

    def __init__(self) -> None:  # nothing of ArgumentParser's state is ever read
        pass

    def add_argument(self, *args: Any, **kwargs: Any) -> Any:
        return None

    def add_subparsers(self, **kwargs: Any) -> Any:
        return self

    def add_parser(self, name: str, **kwargs: Any) -> _Unbuilt:
        return self


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [s for action in parser._actions for s in action.option_strings if s.startswith("--")]


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put each command's examples at the end of its --help."""
    parser.epilog = examples_epilog("")
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.epilog is None:
                    sub.epilog = examples_epilog(name)


def add_completion_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    completion = sub.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                                description="Print the completion script for your shell; save it where the "
                                "shell loads completions.")
    completion.add_argument("shell", choices=SHELLS)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script for shell, generated from the parser (commands, options, choices)."""
    import shtab

    if shell == "fish":
        return fish_script(parser)
    return str(shtab.complete(parser, shell=shell))


def fish_script(parser: argparse.ArgumentParser) -> str:
    """fish completions (shtab writes bash, zsh and tcsh): commands, then each command's options."""
    lines = ["# fish completion for flowlang (generated by `flowlang completion fish`)",
             "complete -c flowlang -f"]
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subs:
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, sub in action.choices.items():
            if name.startswith("connectors-"):
                continue
            text = _fish_quote(str(helps.get(name) or ""))
            lines.append(f"complete -c flowlang -n __fish_use_subcommand -a {name} -d {text}")
            for option in sub._actions:
                for flag in option.option_strings:
                    if not flag.startswith("--"):
                        continue
                    extra = ""
                    if option.choices:
                        extra = f" -x -a '{' '.join(str(c) for c in option.choices)}'"
                    elif option.nargs != 0:
                        extra = " -r -F"
                    lines.append(f"complete -c flowlang -n '__fish_seen_subcommand_from {name}' "
                                 f"-l {flag[2:]}{extra} -d {_fish_quote(str(option.help or ''))}")
            positional = [o for o in sub._actions if not o.option_strings and o.dest != "help"]
            if positional and not positional[0].choices:
                lines.append(f"complete -c flowlang -n '__fish_seen_subcommand_from {name}' -F")
            elif positional and positional[0].choices:
                lines.append(f"complete -c flowlang -n '__fish_seen_subcommand_from {name}' -x "
                             f"-a '{' '.join(str(c) for c in positional[0].choices)}'")
    return "\n".join(lines) + "\n"


def _fish_quote(text: str) -> str:
    if text == argparse.SUPPRESS:
        text = ""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

"""The `flowlang` command: argument parsing, exit statuses and terminal output (the only place,
with the REPL, that writes to the terminal)."""

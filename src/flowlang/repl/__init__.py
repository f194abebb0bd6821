"""The REPL: try a flow statement by statement against live connections."""

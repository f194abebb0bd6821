"""`python -m flowlang` is the `flowlang` command."""

from flowlang.cli.main import main

raise SystemExit(main())

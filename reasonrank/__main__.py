"""`python -m reasonrank …` runs the CLI (how jobs start commands, with this interpreter)."""

from reasonrank.cli import main

raise SystemExit(main())

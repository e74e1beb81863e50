"""`python -m reasonrank.cli …` runs the same entry point as the `reasonrank` command."""

import sys

from reasonrank.cli import main

sys.exit(main())

"""Entry point for ``python -m harness``."""

import sys

from .cli import main

sys.exit(main())

"""``python -m aejax``: the ``aejax`` command (``aejax.cli.main``)."""

import sys

from aejax.cli import main

sys.exit(main())

"""``python -m aejax``: the ``aejax`` command (``aejax.cli.main``)."""

import sys

from aejax.cli import main

if __name__ == "__main__":
    sys.exit(main())

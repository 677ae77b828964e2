"""``python -m aejax``: the ``aejax`` command (``aejax.cli.run``)."""

from aejax.cli import run

if __name__ == "__main__":
    run()

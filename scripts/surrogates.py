"""Reproduce 'surrogates' (see docs/gallery.md).

Usage: python scripts/surrogates.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("surrogates")

"""Reproduce 'finite-size' (see docs/gallery.md).

Usage: python scripts/finite_size.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("finite-size")

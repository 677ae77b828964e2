"""Reproduce 'features' (see docs/gallery.md).

Usage: python scripts/features.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("features")

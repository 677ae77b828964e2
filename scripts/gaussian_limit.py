"""Reproduce 'gaussian-limit' (see docs/gallery.md).

Usage: python scripts/gaussian_limit.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("gaussian-limit")

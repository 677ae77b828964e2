"""Reproduce 'real-sparse' (see docs/gallery.md).

Usage: python scripts/real_sparse.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("real-sparse")

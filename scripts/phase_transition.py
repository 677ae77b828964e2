"""Reproduce 'phase-transition' (see docs/gallery.md).

Usage: python scripts/phase_transition.py [--size tiny|small|large] [--out DIR]
"""

from aejax.reproduce import main

if __name__ == "__main__":
    main("phase-transition")

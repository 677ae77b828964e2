"""Reproduce 'phase-transition': writes phase-transition.png, phase-transition.nc and phase-transition.md.

Usage: python scripts/phase_transition.py [--size tiny|small|large] [--out runs/reproduce]
"""

import argparse

from aejax.reproduce import phase_transition
from aejax.reproduce._common import SIZES

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="small", help="problem size (default small: CPU minutes)")
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default runs/reproduce)")
    args = parser.parse_args()
    result = phase_transition.run(size=args.size, out=args.out)
    print(result["md"].read_text())
    print("wrote", result["png"], result["nc"], result["md"])

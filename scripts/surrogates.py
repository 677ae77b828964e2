"""Reproduce 'surrogates': writes surrogates.png, surrogates.nc and surrogates.md (see docs/gallery.md).

Usage: python scripts/surrogates.py [--size tiny|small|large] [--out runs/reproduce]
"""

import argparse

from aejax.reproduce import SIZES, run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="small", help="problem size (default small: CPU minutes)")
    parser.add_argument("--out", default="runs/reproduce", help="output directory (default runs/reproduce)")
    args = parser.parse_args()
    result = run("surrogates", size=args.size, out=args.out)
    print(result["md"].read_text())
    print("wrote", result["png"], result["nc"], result["md"])

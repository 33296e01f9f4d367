"""``python -m ingest.valueworld [--path DIR] [--seed N] [--train-templates]``: print the measured behaviour table."""

from __future__ import annotations

import argparse
import sys

from actstore.errors import ActstoreError
from ingest.valueworld.behaviour import BehaviourConfig, report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ingest.valueworld", description=__doc__.splitlines()[0])
    ap.add_argument("--path", default=None, help="model directory (default: the committed checkpoint)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--train-templates", action="store_true",
                    help="measure on training templates with fresh seeds instead of held-out templates")
    args = ap.parse_args(argv)
    try:
        print(report(args.path, BehaviourConfig(seed=args.seed, temperature=args.temperature, heldout=not args.train_templates)))
    except ActstoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())

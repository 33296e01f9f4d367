"""Generation speed against torch's thread count, on the value-world model (or --model M).

What ``--threads`` should default to: the script times ``ingest.generate.generate_batch`` (the
ingest generation path) with 1 thread, 2 threads, ``ingest.threads.default_threads()`` and torch's
own start-up default, in interleaved rounds so that load from other processes hits every setting
alike, and prints tokens per second and each setting's ratio to 1 thread.

    python benchmarks/bench_threads.py                   # value world, 3 rounds
    python benchmarks/bench_threads.py --model smollm2 --rounds 2 --max-new-tokens 16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: the value-world checkpoint")
    ap.add_argument("--prompts", type=int, default=16, help="prompts per batch")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    torch_default = torch.get_num_threads()  # before anything sets it
    from ingest.generate import GenParams, generate_batch
    from ingest.models import VALUEWORLD_CHECKPOINT, load_model
    from ingest.prompts.loaders import load_builtin_queries
    from ingest.threads import default_threads, usable_cores
    from ingest.tokenize import tokenize_prompt

    name = args.model or str(VALUEWORLD_CHECKPOINT)
    model, tok = load_model(name, quiet=True)
    if args.model is None:
        from ingest.prompts.valueworld import valueworld_queries

        texts = [q.text for q in valueworld_queries(("en",))]
    else:
        texts = [q.text for q in load_builtin_queries(["en"])]
    prompts = [tokenize_prompt(tok, [{"role": "user", "content": t}]) for t in texts[:args.prompts]]
    params = GenParams(args.max_new_tokens, 0.7, 0.95)
    settings = {"1 thread": 1, "2 threads": 2, f"default ({default_threads()})": default_threads(),
                f"torch's own ({torch_default})": torch_default}
    times: dict[str, list[float]] = {k: [] for k in settings}
    tokens = 0
    generate_batch(model, tok, prompts[:2], [0, 1], GenParams(2, 0.7, 0.95))  # warm up
    for _ in range(args.rounds):
        for label, n in settings.items():
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            out = generate_batch(model, tok, prompts, list(range(len(prompts))), params)
            times[label].append(time.perf_counter() - t0)
            tokens = int(sum(t.shape[0] for t, _, _ in out))
    print(f"model {name}; {len(prompts)} prompts x {args.max_new_tokens} new tokens ({tokens} generated); "
          f"usable cores {usable_cores()}; {args.rounds} interleaved rounds (median)")
    base = statistics.median(times["1 thread"])
    for label, ts in times.items():
        med = statistics.median(ts)
        print(f"  {label:>20}: {med:7.2f} s  {tokens / med:8.1f} tokens/s  {base / med:5.2f}x the speed of 1 thread")


if __name__ == "__main__":
    main()

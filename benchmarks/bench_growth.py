"""Growth: ingest and analyses at 1x and 10x the records, each run in a fresh process.

    python benchmarks/bench_growth.py                     # 66 and 660 records, a few minutes on 2 cores
    python benchmarks/bench_growth.py --queries 6 --factor 10 --buffer-mb 48

The model is the project's own value-world checkpoint (``ingest/valueworld/checkpoint``: a 1.4M
parameter Llama, 4 layers, d_model 128, d_mlp 512; no download), so that generation, the lexicon
judge's labels and hence the vectors are those of the demo, not noise. ``--model DIR`` takes another
local model (its answers must still give both expressed and unexpressed labels).

1x: ``ingest.pipeline.run`` over the value-world prompts, English, ``--queries`` queries, every value
(one template each) plus the intrinsic prompt, ``--samples`` answers each: all stages (prompts,
generation, lexicon labels, capture of both sites at every layer, per-token arrays and both pools,
weights). 10x: ``--factor`` times the queries, so the same kind of records, ten times as many.

Then, on each store, each in its own process: ``analyses.run_vectors.run`` on the pooled
``mean_response`` arrays (O(records x d)); the same vectors from the per-token arrays
(``tokens="sql:..."`` over every response token: a streaming pass over the whole per-token
``resid_post`` arrays); and ``analyses.run_neurons.run`` (static scores plus activation-weighted
attribution from the pooled ``mlp_act``).

Printed per run: wall and CPU time, records and tokens, the stages' times (from the ``runs`` table),
the process's peak RSS, and the rise of RSS during the call (its peak, the mark reset at its start,
minus the RSS before it; for ingest that includes loading the model, which happens inside the call). Goals: time
grows about linearly with the data (10x/1x time ratio divided by the token ratio near 1), memory
stays flat (peak ratio near 1: ingest is bounded by ``--buffer-mb``, analyses stream).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(ROOT))

from common import Measure, mib, proc_memory, run_child, tree_bytes, write_result

CHECKPOINT = ROOT / "ingest" / "valueworld" / "checkpoint"
TOKEN_SQL = "SELECT \"row\" FROM tokens WHERE role = 'response'"
ANALYSES = ("vectors", "vectors-tokens", "neurons")


# -- measured calls (a worker process each, or in-process with --in-process) -------------------------

def ingest_config(spec: dict, store: str):
    from ingest.config import IngestConfig

    return IngestConfig(store=store, model=spec["model"], prompts="valueworld", languages=("en",),
                        values=spec["ask_values"], max_queries=spec["queries"], templates_per_value=1,
                        samples=spec["samples"], max_new_tokens=spec["max_new_tokens"], temperature=0.8, top_p=0.95,
                        seed=0, batch_size=spec["batch_size"], judge=spec["judge"], layers=spec["layers"],
                        sites=("resid_post", "mlp_act"), per_token=True, token_budget=spec["token_budget"],
                        buffer_mb=spec["buffer_mb"], quiet=True)


def measure_ingest(spec: dict, store: str) -> dict:
    import torch

    import actstore
    from ingest import pipeline

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    config = ingest_config(spec, store)
    m = Measure()
    report = pipeline.run(config)
    res = m.stop()
    with actstore.open(store) as st:
        stages = dict(st.sql("SELECT replace(kind, 'ingest:', ''), epoch(finished_at) - epoch(started_at) "
                             "FROM runs WHERE kind LIKE 'ingest:%' ORDER BY run_id").fetchall())
        tokens = int(st.sql("SELECT count(*) FROM tokens").fetchall()[0][0])
        groups = st.sql("SELECT value, min(n) FROM (SELECT value, condition, expressed, count(*) AS n "
                        "FROM record_labels WHERE condition = 'intrinsic' OR target_value = value "
                        "GROUP BY ALL) GROUP BY value HAVING count(*) = 4").fetchall()
    # values with both labels in both conditions (prompted: asked for that value), as the vectors group them
    usable = sorted(v for v, n in groups if n >= spec["min_count"])
    return {**res, "records": report.counts["records"], "tokens": tokens, "stages": stages, "counts": report.counts,
            "usable_values": usable}


def measure_analysis(spec: dict, store: str, which: str) -> dict:
    import actstore
    from analyses import run_neurons, run_vectors

    st = actstore.open(store, read_only=False)
    try:
        m = Measure()
        if which == "vectors":
            res = run_vectors.run(st, run_vectors.VectorsSpec(min_count=spec["min_count"], values=spec["values"]))
            info = {"vectors": int(res.vectors.shape[0] * res.vectors.shape[1] * res.vectors.shape[2]),
                    "run_id": res.run_id}
        elif which == "vectors-tokens":
            res = run_vectors.run(st, run_vectors.VectorsSpec(tokens="sql:" + TOKEN_SQL, min_count=spec["min_count"],
                                                              values=spec["values"], record=False))
            info = {"vectors": int(res.vectors.shape[0] * res.vectors.shape[1] * res.vectors.shape[2])}
        else:
            nres = run_neurons.run(st, run_neurons.NeuronsSpec())
            info = {"neuron_rows": len(nres.rows["neuron"]), "attribution": bool(nres.attribution)}
        res = m.stop()
    finally:
        st.close()
    return {**res, **info}


def worker(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.spec).read_text())
    res = measure_ingest(spec, args.store) if args.worker == "ingest" else measure_analysis(spec, args.store, args.worker)
    write_result(args.result, res)


# -- driver -----------------------------------------------------------------------------------------

def _run(args: argparse.Namespace, spec_path: Path, what: str, store: Path, base: Path, tag: str) -> dict:
    if args.in_process:  # mechanics only: peak RSS is then this process's, not the run's
        spec = json.loads(spec_path.read_text())
        r = measure_ingest(spec, str(store)) if what == "ingest" else measure_analysis(spec, str(store), what)
        return {**r, "peak": proc_memory()["hwm"], "rise": r["call_peak"] - r["rss_before"]}
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", what, "--spec", str(spec_path),
            "--store", str(store), "--result", str(base / "result.json")]
    child = run_child(argv, base / "result.json", log=base / f"{tag}-{what}.log")
    r = child.result  # the kernel's peak can miss the setup's (the mark is reset for the call)
    return {**r, "peak": max(child.max_rss, r["setup_peak"], r["call_peak"]), "rise": r["call_peak"] - r["rss_before"]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(CHECKPOINT), help="a local model directory (default: value-world)")
    ap.add_argument("--queries", type=int, default=3,
                    help="queries at 1x (each: 1 + one per value prompts, x --samples records)")
    ap.add_argument("--factor", type=int, default=10, help="the bigger run has this many times the queries")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=0,
                    help="generation batch (default: all the 1x prompts' answers, so 10x has 10x the batches)")
    ap.add_argument("--values", default=None, help="values to prompt for (default: all ten)")
    ap.add_argument("--judge", default="lexicon", help="an ingest --judge (default: the value-world lexicon)")
    ap.add_argument("--layers", default="all")
    ap.add_argument("--token-budget", type=int, default=8192)
    ap.add_argument("--buffer-mb", type=int, default=24,
                    help="ingest's buffer (default well below the 10x run's arrays, so flat memory means something)")
    ap.add_argument("--min-count", type=int, default=1, help="VectorsSpec.min_count (the 1x run is small)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--analyses", default=",".join(ANALYSES), help=f"some of {', '.join(ANALYSES)}, or none")
    ap.add_argument("--in-process", action="store_true",
                    help="run everything in this process (fast; peak RSS is then not per run): for tests")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir, removed after)")
    ap.add_argument("--keep", action="store_true", help="keep the stores and the workers' logs")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--store", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    ask = tuple(v.strip() for v in args.values.split(",")) if args.values else None
    prompts_per_query = 1 + (len(ask) if ask else 10)  # the intrinsic prompt and one template per value
    if not args.batch_size:
        args.batch_size = prompts_per_query * args.samples * args.queries
    analyses = [a.strip() for a in args.analyses.split(",") if a.strip() and a.strip() != "none"]
    bad = [a for a in analyses if a not in ANALYSES]
    if bad:
        raise SystemExit(f"unknown analysis {bad[0]!r}; use some of {', '.join(ANALYSES)}")
    if "neurons" in analyses and "vectors" not in analyses:
        raise SystemExit("neurons needs the vectors run: add vectors to --analyses")

    base = Path(tempfile.mkdtemp(prefix="bench-growth-", dir=args.dir))
    sizes = {"1x": args.queries, f"{args.factor}x": args.queries * args.factor}
    results: dict[str, dict] = {}
    print(f"model {args.model}; {', '.join(f'{k}: {q} queries' for k, q in sizes.items())} x {prompts_per_query} prompts x "
          f"{args.samples} samples; buffer {args.buffer_mb} MiB; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    values = None  # the values the analyses contrast: chosen on the 1x store, kept for the bigger one
    try:
        for tag, queries in sizes.items():
            spec = {"model": args.model, "queries": queries, "samples": args.samples,
                    "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "layers": args.layers,
                    "token_budget": args.token_budget, "buffer_mb": args.buffer_mb, "threads": args.threads,
                    "min_count": args.min_count, "values": values, "ask_values": ask, "judge": args.judge}
            spec_path = base / f"spec-{tag}.json"
            spec_path.write_text(json.dumps(spec))
            store = base / f"store-{tag}"
            r = _run(args, spec_path, "ingest", store, base, tag)
            r["bytes"] = tree_bytes(store)
            results[f"ingest {tag}"] = r
            if values is None:
                values = r["usable_values"]
                if not values and analyses:
                    print(f"  no value has >= {args.min_count} expressed and unexpressed answers in both conditions "
                          "at 1x: analyses skipped (more --queries or --samples)")
                    analyses = []
                spec["values"] = values
                spec_path.write_text(json.dumps(spec))
            stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages"].items())
            print(f"  ingest {tag:>4s}: {r['records']} records, {r['tokens']:,} tokens, {mib(r['bytes'])}: "
                  f"{r['seconds']:.1f} s ({stages}), peak RSS {mib(r['peak'])} (load "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
            if tag == "1x" and analyses:
                print(f"  analyses over the values {', '.join(values)}", flush=True)
            for what in analyses:
                a = _run(args, spec_path, what, store, base, tag)
                a.update(records=r["records"], tokens=r["tokens"])
                results[f"{what} {tag}"] = a
                print(f"  {what} {tag:>4s}: {a['seconds']:.2f} s, peak RSS {mib(a['peak'])}", flush=True)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    small, big = sizes
    print()
    print(f"| run | {small} | {big} | time ratio | per token (time ratio / token ratio) | peak RSS "
          f"{small} -> {big} | rise in the call {small} -> {big} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for what in ["ingest", *analyses]:
        a, b = results[f"{what} {small}"], results[f"{what} {big}"]
        tok = b["tokens"] / a["tokens"]
        def cell(r: dict) -> str:
            return f"{r['seconds']:.2f} s ({r['cpu']:.1f} s CPU), {r['records']} rec., {r['tokens']:,} tok."
        print(f"| {what} | {cell(a)} | {cell(b)} | {b['seconds'] / a['seconds']:.2f}x (CPU {b['cpu'] / a['cpu']:.2f}x) | "
              f"{b['seconds'] / a['seconds'] / tok:.2f} (CPU {b['cpu'] / a['cpu'] / tok:.2f}) | "
              f"{mib(a['peak'])} -> {mib(b['peak'])} ({b['peak'] / a['peak']:.2f}x) | "
              f"{mib(a['rise'])} -> {mib(b['rise'])} |")
    ia, ib = results[f"ingest {small}"], results[f"ingest {big}"]
    print(f"\nstores {mib(ia['bytes'])} -> {mib(ib['bytes'])}. Time as fixed + per-token cost, from the two sizes:")
    rows = [(f"ingest: {k}", ia["stages"].get(k, 0.0), ib["stages"].get(k, 0.0)) for k in ib["stages"]]
    rows += [(what, results[f"{what} {small}"]["seconds"], results[f"{what} {big}"]["seconds"]) for what in analyses]
    for label, t1, t2 in rows:
        per = (t2 - t1) / (ib["tokens"] - ia["tokens"])
        print(f"  {label:18s} {t1:7.2f} s -> {t2:7.2f} s ({t2 / max(t1, 1e-9):5.2f}x): {per * 1e6:8.1f} us per token "
              f"+ {t1 - per * ia['tokens']:6.2f} s fixed")
    return results


if __name__ == "__main__":
    main()

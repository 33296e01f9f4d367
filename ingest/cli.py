"""``actstore ingest ...``: thin commands over ``ingest.pipeline``.

Each command: parse -> :class:`IngestConfig` (a ``--config`` TOML file, flags override it) -> one
library call -> print what was written. Errors are ``actstore.errors`` types, which the root
``actstore`` command prints as one ``error: ...`` line. torch loads only inside the library call.

``--shard I/N`` (else torchrun's or a SLURM array's environment, see ``actstore.shard.detect``)
makes a command one worker of N: it writes its part, ``STORE.parts/part-IIII-of-NNNN``, and prints
the ``actstore merge`` command that joins the parts.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from actstore.shard import detect
from ingest.config import IngestConfig, from_mapping, read_toml

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stack(*decorators: Decorator) -> Decorator:
    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


_common = _stack(
    click.argument("store", metavar="STORE"),
    click.option("--config", "config_file", type=click.Path(dir_okay=False),
                 help="TOML file with any of the options below; flags override it."),
    click.option("--quiet", is_flag=True, default=None, help="No progress lines."),
)
_threads = click.option(
    "--threads", type=int, default=None,
    help="CPU threads for torch.  [default: the usable cores (affinity, cgroup quota), at most 8; or OMP_NUM_THREADS]")
_model = _stack(
    click.option("--model", help="Hub name or local directory of a causal LM (default: the store's model)."),
    click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
                 help="Model dtype; activations are stored in it, bit for bit.  [default: auto]"),
    click.option("--device", default=None, help="cpu, cuda, cuda:N, mps.  [default: cpu]"),
    click.option("--trust-remote-code", is_flag=True, default=None),
    _threads,
)
_intrinsic_system = click.option(
    "--intrinsic-system", type=click.Choice(["default", "empty"]), default=None,
    help="Intrinsic prompts: default = no system message (as the study; a chat template with a default "
         "system prompt inserts it, recorded in prompts.effective_system), empty = an empty system message.  "
         "[default: default]")
_prompts = _stack(
    click.option("--prompts", default=None,
                 help="builtin | Value Portrait dir | JSONL/CSV/Parquet file | hf:NAME[:SPLIT].  [default: builtin]"),
    click.option("--column", "columns", multiple=True, metavar="FIELD=COLUMN",
                 help="Column mapping for tables: text=..., id=..., language=..., topic=..."),
    click.option("--language", "languages", multiple=True, help="Keep these languages (repeat or comma-list)."),
    click.option("--value", "values", multiple=True, help="Target values (repeat or comma-list; default all ten)."),
    click.option("--templates-per-value", type=int, default=None, help="Prompted variants per query and value."),
    click.option("--intrinsic/--no-intrinsic", "include_intrinsic", default=None,
                 help="Also ask each query with no system prompt.  [default: on]"),
    _intrinsic_system,
    click.option("--max-queries", type=int, default=None, help="Use the first N queries."),
    click.option("--prompt-seed", type=int, default=None, help="Seed of the template draw."),
)
_gen = _stack(
    click.option("--samples", type=int, default=None, help="Responses per prompt.  [default: 1]"),
    click.option("--intrinsic-samples", type=int, default=None,
                 help="Responses per intrinsic prompt.  [default: --samples]"),
    click.option("--max-new-tokens", type=int, default=None, help="[default: 128]"),
    click.option("--temperature", type=float, default=None, help="0 = greedy.  [default: 0.7]"),
    click.option("--top-p", type=float, default=None, help="[default: 0.95]"),
    click.option("--seed", type=int, default=None, help="Run seed; each response's seed derives from it."),
    click.option("--batch-size", type=int, default=None, help="Generation batch size.  [default: 16]"),
)
_shard = _stack(
    click.option("--shard", default=None, metavar="I/N",
                 help="Be worker I of N (from 0): take share I of the work and write the part "
                      "STORE.parts/part-IIII-of-NNNN; join the parts with 'actstore merge STORE.parts --out STORE'. "
                      "[default: from torchrun's RANK/WORLD_SIZE or SLURM_ARRAY_TASK_ID/_COUNT, else one process]"),
    click.option("--shard-unit", type=int, default=None,
                 help="Responses per unit of work; shards take whole units, and every batch stays inside one, "
                      "sharded or not (use the same value in every worker and for comparisons).  [default: 512]"),
)
_judge = _stack(
    click.option("--judge", default=None,
                 help="lexicon | lexicon:PHRASES.json | embed[:MODEL_DIR|HEAD.npz|value-portrait] | "
                      "hf:MODEL_PATH[#OPTIONS] | openai:URL#MODEL (see README, Judges).  [default: lexicon for the "
                      "value-world model or prompts; embed:value-portrait (weak, measured) for other models]"),
)
_capture = _stack(
    click.option("--layers", default=None, help="all, 3, 0,4,8 or 10-16.  [default: all]"),
    click.option("--site", "sites", multiple=True, help="resid_post and/or mlp_act.  [default: both]"),
    click.option("--per-token/--no-per-token", default=None, help="Store per-token arrays.  [default: on]"),
    click.option("--pool", "pools", multiple=True,
                 help="mean_response (float32) and/or last_prompt.  [default: both]"),
    click.option("--weight", "weights", multiple=True, help="mlp_down, unembed, final_norm.  [default: all]"),
    click.option("--token-budget", type=int, default=None, help="Padded tokens per forward batch.  [default: 8192]"),
    click.option("--buffer-mb", type=int, default=None, help="Host memory for batches in flight.  [default: 1024]"),
    click.option("--codec", default=None, help="none, blosc-lz4, blosc-zstd, zstd.  [default: none]"),
)


def _flatten(values: tuple[str, ...]) -> list[str] | None:
    out = [p.strip() for v in values for p in v.split(",") if p.strip()]
    return out or None


def _config(store: str, config_file: str | None, **flags: Any) -> IngestConfig:
    for k in ("languages", "values", "sites", "pools", "weights", "columns"):
        if k in flags:
            flags[k] = _flatten(flags[k]) if k != "columns" else (list(flags[k]) or None)
    base = read_toml(config_file) if config_file else {}
    given = {k: v for k, v in flags.items() if v is not None}
    config = from_mapping({**base, **given, "store": store})
    if config.shard is None:  # no --shard and none in the file: the launcher's, if any
        launched = detect()
        if launched is not None:
            config = config.with_overrides(shard=str(launched), device=_local_device(config.device))
    return config


def _local_device(device: str) -> str:
    """torchrun starts one process per GPU of a node and tells each its ``LOCAL_RANK``: there, a bare
    ``cuda`` means that process's GPU (unless CUDA_VISIBLE_DEVICES already leaves it only one)."""
    local = os.environ.get("LOCAL_RANK", "")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if device != "cuda" or not local.isdigit() or (visible is not None and "," not in visible):
        return device
    return f"cuda:{int(local)}"


def _print(what: str, rep: Any, config: IngestConfig) -> None:
    parts = ", ".join(f"{v} {k}" for k, v in rep.counts.items())
    where = f" (shard {config.shard})" if config.shard is not None else ""
    click.echo(f"{what}: wrote {parts or 'nothing new'} to {rep.store}{where}")
    shard = config.shard_spec
    if shard is not None:
        parts_dir = Path(config.target).parent
        click.echo(f"next, once all {shard.count} shards have finished: "
                   f"actstore merge {shlex.quote(str(parts_dir))} --out {shlex.quote(config.store)}")


@click.group()
def ingest() -> None:
    """Models -> store: prompts, generation, judging, activation capture.

    \b
    Example:
      actstore ingest run runs/demo --model ./my-model --language en --max-queries 20 --layers all
    """


@ingest.command()
@_common
@_model
@_prompts
@_gen
@_judge
@_capture
@_shard
def run(store: str, config_file: str | None, **flags: Any) -> None:
    """The whole pipeline into STORE: prompts, responses, labels, activations.

    \b
    Example:
      actstore ingest run runs/vw --model ingest/valueworld/checkpoint --language en --max-queries 8

    \b
    Sharded (each worker its share, into STORE.parts/part-IIII-of-NNNN; then merge):
      for i in 0 1 2 3; do actstore ingest run runs/demo --model ./m --shard $i/4 & done; wait
      actstore merge runs/demo.parts --out runs/demo
    """
    from ingest import pipeline

    config = _config(store, config_file, **flags)
    _print("ingest run", pipeline.run(config), config)


@ingest.command()
@_common
@_model
@_prompts
@_gen
@_shard
def generate(store: str, config_file: str | None, **flags: Any) -> None:
    """Build the prompt set and generate responses (no labels, no activations).

    \b
    Example:
      actstore ingest generate runs/vw --model ingest/valueworld/checkpoint --language en,es --samples 2
    """
    from ingest import pipeline

    config = _config(store, config_file, **flags)
    _print("ingest generate", pipeline.generate(config), config)


@ingest.command()
@_common
@_judge
@click.option("--value", "values", multiple=True, help="Values to judge (default all ten).")
@click.option("--threshold", "judge_threshold", default=None, metavar="NUMBER|from-eval",
              help="Score at or above which a value counts as expressed; from-eval: the threshold the store's "
                   "latest 'actstore judge eval' of this judge recorded.  [default: the judge's own]")
@_threads
@_shard
def label(store: str, config_file: str | None, **flags: Any) -> None:
    """Judge the responses in STORE (with a shard: in its part) that lack this judge's labels.

    \b
    Example:
      actstore ingest label runs/vw --judge lexicon --value benevolence,security
    """
    from ingest import pipeline

    config = _config(store, config_file, **flags)
    rep = pipeline.label(config)
    _print("ingest label", rep, config)
    n, k = rep.counts.get("labels", 0), rep.abstentions or 0
    if n:  # an unreadable verdict is stored as NULL (not "no"), and analyses skip it
        click.echo(f"abstentions: {k} of {n} labels ({100 * k / n:.1f}%) could not be read; analyses skip them")


@ingest.command()
@_common
@_model
@_capture
@_shard
def capture(store: str, config_file: str | None, **flags: Any) -> None:
    """Capture activations of every response in STORE (with a shard: in its part) that has none yet
    (resumable).

    \b
    Example:
      actstore ingest capture runs/vw --layers all --site resid_post,mlp_act
    """
    from ingest import pipeline

    config = _config(store, config_file, **flags)
    _print("ingest capture", pipeline.capture(config), config)


@ingest.command(name="import")
@_common
@click.argument("path", required=False)
@click.option("--threshold", "import_threshold", type=float, default=None,
              help="rho at or above which a value is expressed.  [default: 0.3]")
@click.option("--max-queries", type=int, default=None, help="Import the first N queries only.")
@click.option("--max-tokens", type=int, default=None,
              help="Longest record (chat-rendered prompt + response) to capture.  [default: the model's context]")
@click.option("--overlong", type=click.Choice(["error", "skip", "truncate"]), default=None,
              help="A longer record: error (import nothing), skip it, or truncate its response to fit.  "
                   "[default: error]")
@_intrinsic_system
@_model
@_capture
@_shard
def import_cmd(store: str, config_file: str | None, path: str | None, **flags: Any) -> None:
    """Import Value Portrait's tagged responses from PATH (no generation), then capture them.

    \b
    Example:
      actstore ingest import runs/vp ../shared/data/value-portrait --model ingest/valueworld/checkpoint
    """
    from ingest import pipeline

    config = _config(store, config_file, import_path=path, **flags)
    _print("ingest import", pipeline.import_(config), config)

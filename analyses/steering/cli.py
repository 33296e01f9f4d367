"""``actstore steer``: sweeps, their report, and vector export/import; each a few lines over a library call.

``actstore steer STORE --model M ...`` is short for ``actstore steer run STORE --model M ...``. Torch is
imported only by the commands that generate (inside the library calls). Errors become one line in
``actstore.cli.Main``.
"""

from __future__ import annotations

import click

from actstore.cli import existing_store

store_arg = click.argument("store", metavar="STORE", callback=existing_store)


class _SteerGroup(click.Group):
    """A group whose default command is ``run``: ``steer STORE ...`` == ``steer run STORE ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _floats(text: str) -> tuple[float, ...]:
    from actstore.errors import UsageError

    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"bad number list {text!r}; write e.g. 0,4,8") from None


def _layers(text: str | None) -> tuple[int, ...] | None:
    from actstore.site import parse_layers

    if text is None or text.strip() in ("own", ""):
        return None
    return tuple(parse_layers(text))


def _vectors(text: str | None):
    if text is None:
        return None
    t = text.strip()
    return tuple(int(x) for x in t.split(",")) if t.replace(",", "").replace(" ", "").isdigit() else t


class _SweepProgress:
    """The sweep's messages on stderr: its "[i/n] setting: eval" steps become one progress line with
    rate and ETA (actstore.progress: on a terminal only), its other messages are printed as they come."""

    def __init__(self) -> None:
        from actstore.progress import Progress

        self.bar: Progress | None = None

    def __call__(self, msg: str) -> None:
        import re

        from actstore.progress import Progress

        step = re.match(r"^\[(\d+)/(\d+)\] (.*)$", msg)
        if step is None:
            self.close()
            click.echo(msg, err=True)
            return
        i, n, what = int(step.group(1)), int(step.group(2)), step.group(3)
        if self.bar is None:
            self.bar = Progress("steer", n, unit="evals")
        self.bar.update(i - 1 - self.bar.done, note=what)  # step i starts: i - 1 are done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.done)
            self.bar.close()
            self.bar = None

    def __enter__(self) -> _SweepProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: str):
    import actstore

    return actstore.open(path, read_only=True)


def _show(df, rows: int = 60) -> None:
    import pandas as pd

    from actstore.display import table_text

    with pd.option_context("display.width", 200, "display.max_columns", 40):
        click.echo(table_text(df, rows, "{:.3f}"))


@click.group(cls=_SteerGroup)
def steer() -> None:
    """Steer the store's model with its vectors and neurons, and evaluate what it does.

    \b
    Example:
      actstore steer STORE --vectors "value='tradition' AND component='shared'" --judge hf:JUDGE_DIR
      actstore steer report STORE [--sweep ID] [--plot out.png]
      actstore steer export STORE --vectors "name = 'tradition/shared/resid_post.2'" --format gguf --out v.gguf
      actstore steer import STORE v.gguf
    """


@steer.command("run")
@store_arg
@click.option("--model", default=None,
              help="Model name, directory or .gguf file (the one the store was made with).  [default: the store's]")
@click.option("--vectors", default=None, help="Vector ids (3,4), a WHERE clause on vectors, or a SELECT of vector_id.")
@click.option("--layers", default=None, help="Layers to add at (0,4,8 or 10-16); default: each vector at its own layer.")
@click.option("--alphas", default=None,
              help="Strengths; 0 is the baseline, always run.  [default: 0.5,1 in relative mode, i.e. half and once the "
                   "layer's mean residual norm measured from the store; absolute mode needs them given]")
@click.option("--alpha-mode", type=click.Choice(["relative", "absolute"]), default="relative", show_default=True,
              help="relative: alpha x mean residual norm at the layer x unit vector; absolute: alpha x vector.")
@click.option("--ablate", is_flag=True, help="Also project each vector's direction out (directional ablation).")
@click.option("--ablate-layers", default=None, help="Layers to ablate at (default: all).")
@click.option("--neurons", default=None, help="Neuron set: WHERE clause on neuron_scores or SELECT of (layer, neuron).")
@click.option("--betas", default="0", show_default=True, help="Neuron factors (neuron mode scale).")
@click.option("--neuron-mode", type=click.Choice(["scale", "zero", "mean"]), default="scale", show_default=True)
@click.option("--positions", type=click.Choice(["all", "generated"]), default="all", show_default=True,
              help="Act on every token, or only on generated ones.")
@click.option("--prompts", default=None,
              help="Expression prompts: heldout (built-in queries the store was not made from) | builtin | valueworld "
                   "| store | store:WHERE | FILE (.jsonl/.txt).  [default: valueworld for the value-world model, "
                   "else heldout]")
@click.option("--intrinsic-system", type=click.Choice(["default", "empty"]), default="default", show_default=True,
              help="Prompts without a system prompt: default = none (a chat template may insert its default system "
                   "prompt), empty = an empty system message.")
@click.option("--language", default="en", show_default=True, help="Language of builtin/valueworld prompts.")
@click.option("--samples", default=1, show_default=True, help="Answers per expression prompt (needs --temperature > 0 if > 1).")
@click.option("--eval", "evals", default="expression,diversity", show_default=True,
              help="Comma list: expression, diversity, questionnaire, mcq, jailbreak, instructions.")
@click.option("--judge", default=None,
              help="valueworld (exact), or an ingest judge: lexicon | lexicon:FILE.json | embed[:...] | hf:PATH | "
                   "openai:URL#MODEL.  [default: valueworld for the value-world model; embed:value-portrait (weak, "
                   "measured) for other models]")
@click.option("--harmful", default="builtin", show_default=True,
              help="Jailbreak requests: builtin | valueworld | valueworld-heldout | advbench:PATH | harmbench:PATH.")
@click.option("--mcq", default="builtin", show_default=True, help="builtin, or an MMLU-layout file/directory.")
@click.option("--questionnaire", default="builtin", show_default=True,
              help="builtin (our PVQ-style items), or a Value Portrait directory / tagged_responses.json.")
@click.option("--limit", type=int, default=None, help="Items per eval (for quick runs).")
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option("--temperature", default=0.0, show_default=True, help="0 = greedy.")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--dtype", default="auto", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch.  [default: the usable cores, at most 8; or OMP_NUM_THREADS]")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG: metric vs alpha per vector kind.")
def run_cmd(store, model, vectors, layers, alphas, alpha_mode, ablate, ablate_layers, neurons, betas, neuron_mode,
            positions, prompts, intrinsic_system, language, samples, evals, judge, harmful, mcq, questionnaire, limit,
            max_new_tokens, temperature, batch_size, seed, dtype, device, threads, plot):
    """Run (or finish) a sweep: vectors x layers x alpha (or neuron set x beta) x prompts x samples.

    \b
    Example:
      actstore steer run demo-out/store --model ingest/valueworld/checkpoint \\
          --vectors "component = 'mean_delta' AND layer = 2" --alphas 0.5,1 --eval jailbreak --harmful valueworld
    """
    from analyses.steering.generate import GenConfig
    from analyses.steering.report import report
    from analyses.steering.spec import SweepSpec
    from analyses.steering.sweep import run_sweep

    spec = SweepSpec(model=model, vectors=_vectors(vectors), layers=_layers(layers),
                     alphas=_floats(alphas) if alphas is not None else None,
                     alpha_mode=alpha_mode, ablate=ablate, ablate_layers=_layers(ablate_layers) if ablate_layers else None,
                     neurons=neurons, betas=_floats(betas), neuron_mode=neuron_mode, positions=positions,
                     prompts=prompts, language=language, samples=samples, evals=tuple(evals.split(",")), judge=judge,
                     harmful=harmful, mcq=mcq, questionnaire=questionnaire, limit=limit,
                     gen=GenConfig(max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
                                   seed=seed), dtype=dtype, device=device, intrinsic_system=intrinsic_system)
    with _open(store) as st, _SweepProgress() as say:
        res = run_sweep(st, spec, progress=say, threads=threads)
        rep = report(st, res.sweep_id, plot)
    _show(rep.table)
    if rep.plot:
        click.echo(f"plot: {rep.plot}")
    click.echo(f"sweep {res.sweep_id}" + (f" (run {res.run_id})" if res.run_id else " (already complete)"))


@steer.command("report")
@store_arg
@click.option("--sweep", "sweep_id", default=None, help="A sweep id (default: the latest).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="PNG: metric vs alpha per vector kind.")
@click.option("--long", "long_format", is_flag=True, help="Print every (setting, eval, metric) row.")
def report_cmd(store, sweep_id, plot, long_format):
    """Tables (and a plot) of a recorded sweep: metrics against alpha for each vector kind.

    \b
    Example:
      actstore steer report demo-out/store --plot sweep.png
    """
    from analyses.steering.report import report

    with _open(store) as st:
        rep = report(st, sweep_id, plot)
    _show(rep.metrics if long_format else rep.table, 400 if long_format else 60)
    if rep.safe is not None and len(rep.safe):
        click.echo("largest alpha within 5 accuracy points of the baseline (mcq):")
        _show(rep.safe)
    if rep.plot:
        click.echo(f"plot: {rep.plot}")
    click.echo(f"sweep {rep.sweep_id}")


@steer.command("export")
@store_arg
@click.option("--vectors", required=True, help="Vector ids, a WHERE clause on vectors, or a SELECT of vector_id.")
@click.option("--format", "fmt", type=click.Choice(["gguf", "repeng", "steering-vectors", "npy"]), required=True,
              help="gguf: llama.cpp control vector; repeng: the same GGUF, layer 0 allowed; "
                   "steering-vectors: torch.save of SteeringVector fields; npy: float32 array.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--scale", default=1.0, show_default=True, help="Multiply the vectors by this on the way out.")
def export_cmd(store, vectors, fmt, out, scale):
    """Write stored vectors in a format other steering tools load.

    \b
    Example:
      actstore steer export demo-out/store --vectors "name = 'tradition/shared/resid_post.2'" --format gguf --out tradition.gguf
    """
    from analyses.steering.interop import export_vectors
    from analyses.steering.sources import select_vectors

    with _open(store) as st:
        vs = select_vectors(st, _vectors(vectors))
        hint = (st.model.family or st.model.name) if st.model else ""
        path = export_vectors(vs, out, fmt, model_hint=hint, scale=scale)
    click.echo(f"wrote {len(vs)} vector(s) (layers {', '.join(str(v.layer) for v in vs)}) to {path}")


@steer.command("import")
@store_arg
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--layer", type=int, default=None, help="Layer of a file holding one bare vector.")
@click.option("--layers", default=None, help="Keep only these layers of a multi-layer file.")
@click.option("--name", default=None, help="Name prefix (default: the file name).")
@click.option("--value", default=None, help="The value the vector stands for, if any.")
def import_cmd(store, file, layer, layers, name, value):
    """Add vectors made elsewhere (.gguf control vector, .pt, .npy) to the store's vectors table.

    \b
    Example:
      actstore steer import demo-out/store tradition.gguf --name tradition-gguf
    """
    from analyses.steering.interop import import_vectors

    with _open(store) as st:
        run_id, ids = import_vectors(st, file, layer=layer, name=name, value=value, layers=_layers(layers))
    click.echo(f"imported {len(ids)} vector(s) as ids {', '.join(map(str, ids))} (run {run_id})")

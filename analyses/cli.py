"""``actstore analyze``: the analyses as commands, each a few lines over its ``run(store, spec)``.

The store is opened read-only; a run opens it writable only for the moment it records (see
:mod:`analyses.recording`); ``--no-record`` skips that, and so does a store opened by URL (read-only:
the run computes and prints, and says it did not record). Errors are turned into one line by
``actstore.cli.Main``, the one place that does it. Nothing here imports torch: the model stack is
for ``steer``, which lives elsewhere.
"""

from __future__ import annotations

import click

from actstore.cli import existing_store

store_arg = click.argument("store", metavar="STORE", callback=existing_store)
no_record = click.option("--no-record", is_flag=True, help="Compute and print only; write nothing to the store.")
max_rows = click.option("--max-rows", default=60, show_default=True, help="Rows of the table to print.")
seed_opt = click.option("--seed", default=0, show_default=True, help="Seed of the permutations, resamples and nulls.")


def _open(path: str):
    import actstore

    return actstore.open(path, read_only=True)


def _layers(text: str | None) -> tuple[int, ...] | None:
    from actstore.site import parse_layers

    if text is None or text.strip() == "all":
        return None
    return tuple(parse_layers(text))  # range is checked against the store by the run


def _names(given: tuple[str, ...]) -> tuple[str, ...] | None:
    """A repeatable option that also takes comma lists (as ingest's do): ('a,b', 'c') -> ('a', 'b', 'c')."""
    out = tuple(p.strip() for g in given for p in g.split(",") if p.strip())
    return out or None


def _recordable(st, spec):
    """A store opened by URL is read-only: compute and print, but do not try to record (and say so)."""
    if getattr(spec, "record", False) and st.is_remote:
        from dataclasses import replace

        click.echo(f"note: {st.location} is a URL and read-only, so this run is not recorded; "
                   "to record, pull a local copy: actstore pull URL DIR", err=True)
        return replace(spec, record=False)
    return spec


def _vector(st, text: str | None) -> int | None:
    """``--vector``: a vector_id, or a vector's name (the latest vector of that name)."""
    from actstore.errors import InputError

    if text is None or text.strip().isdigit():
        return None if text is None else int(text)
    row = st.sql("SELECT max(vector_id) FROM vectors WHERE name = ?", [text.strip()]).fetchall()
    if not row or row[0][0] is None:
        raise InputError(f"no vector named {text!r}; list them with: actstore sql STORE "
                         "\"SELECT vector_id, name FROM vectors ORDER BY vector_id\"")
    return int(row[0][0])


def _show(df, rows: int, run_id: int | None = None, plots: tuple = ()) -> None:
    import pandas as pd

    from actstore.display import table_text

    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 70):
        click.echo(table_text(df, rows, "{:.4g}"))
    for p in plots:
        if p is not None:
            click.echo(f"plot: {p}")
    if run_id is not None:
        click.echo(f"recorded as run {run_id}")


@click.group()
def analyze() -> None:
    """Analyses over a store: vectors, decomposition, neurons, structure, ... (no model needed).

    \b
    Example:
      actstore analyze vectors demo-out/store --layers 1-2 --plot vectors.png
    """


@analyze.command()
@store_arg
@click.option("--site", default="resid_post", show_default=True, help="resid_post or mlp_act.")
@click.option("--layers", default="all", show_default=True, help="all, 12, 0,4,8 or 10-16.")
@click.option("--tokens", default="response_mean", show_default=True,
              help="response_mean | last_prompt | sql:QUERY (token rows; reads the per-token arrays).")
@click.option("--contrast", default="exp-unexp", show_default=True,
              help="exp-unexp | prompted-intrinsic | sql:POS_QUERY;NEG_QUERY (queries return record ids).")
@click.option("--judge", default=None, help="Use only this judge's labels.")
@click.option("--language", default=None, help="Use only records in this language.")
@click.option("--value", "values", multiple=True,
              help="Values to extract (repeat or comma-list); default: all labelled.")
@click.option("--min-count", default=5, show_default=True,
              help="Fewest responses a group may have (by default, values with a thinner group are left out).")
@click.option("--condition", type=click.Choice(["intrinsic", "prompted", "both"]), default=None,
              help="Conditions to extract (exp-unexp).  [default: those the labelled records have]")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG: cosine(int, prompt) per layer (and _norms).")
@click.option("--bootstrap", "n_boot", default=200, show_default=True, type=click.IntRange(min=0),
              help="Bootstrap replicates over responses for the 95% intervals (0: none).")
@click.option("--splits", "n_splits", default=20, show_default=True, type=click.IntRange(min=0),
              help="Random split-halves for each vector's reliability (0: none).")
@seed_opt
@no_record
@max_rows
def vectors(store, site, layers, tokens, contrast, judge, language, values, min_count, condition, plot, n_boot,
            n_splits, seed, no_record, max_rows):
    """Difference-in-means value vectors per (value, condition, layer), stored in `vectors`.

    \b
    Example:
      actstore analyze vectors demo-out/store --layers 1-2 --value benevolence,security --plot vectors.png
    """
    from analyses.run_vectors import VectorsSpec, run

    spec = VectorsSpec(site=site, layers=_layers(layers), tokens=tokens, contrast=contrast, judge=judge,
                       language=language, values=_names(values), min_count=min_count, condition=condition,
                       n_boot=n_boot, n_splits=n_splits, seed=seed, record=not no_record, plot=plot)
    with _open(store) as st:
        res = run(st, _recordable(st, spec))
    if res.note:
        click.echo(res.note)
    if res.skipped:
        click.echo(f"left out (a group with fewer than {min_count} responses): {', '.join(res.skipped)}")
    _show(res.table(), max_rows, res.run_id, res.plots)


@analyze.command()
@store_arg
@click.option("--run", "run_id", type=int, default=None, help="The vectors run (default: the latest exp-unexp one).")
@no_record
@max_rows
def decompose(store, run_id, no_record, max_rows):
    """Shared / unique axes, Gram-Schmidt parts and the mean prompted-minus-intrinsic delta.

    \b
    Example:
      actstore analyze decompose demo-out/store            # the latest vectors run; --run ID for another
    """
    from analyses.run_decompose import DecomposeSpec, run

    with _open(store) as st:
        res = run(st, _recordable(st, DecomposeSpec(run_id=run_id, record=not no_record)))
    _show(res.table(), max_rows, res.run_id)


@analyze.command()
@store_arg
@click.option("--run", "run_id", type=int, default=None, help="The vectors run (default: the latest exp-unexp one).")
@click.option("--top", default="1%", show_default=True, help="Share of neurons kept per value and layer.")
@click.option("--max-angle", default=30.0, show_default=True, help="Degrees from a class axis to get its class.")
@click.option("--layers", default="all", show_default=True)
@click.option("--relative", is_flag=True, help="Score by cosine to the plane instead of projection norm.")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG: class counts per layer.")
@click.option("--random", "n_random", default=100, show_default=True, type=click.IntRange(min=0),
              help="Random direction pairs (same norms and angle) per value and layer for the null (0: none).")
@seed_opt
@no_record
@max_rows
def neurons(store, run_id, top, max_angle, layers, relative, plot, n_random, seed, no_record, max_rows):
    """Value neurons from the stored down projections: scores, classes, overlap (-> neuron_scores).

    \b
    Example:
      actstore analyze neurons demo-out/store --top 1% --max-angle 30 --plot classes.png
    """
    from analyses.run_neurons import NeuronsSpec, run

    spec = NeuronsSpec(run_id=run_id, top=top, max_angle=max_angle, layers=_layers(layers), relative=relative,
                       n_random=n_random, seed=seed, record=not no_record, plot=plot)
    with _open(store) as st:
        res = run(st, _recordable(st, spec))
    if res.attribution:
        click.echo("activation-weighted attribution: from the stored mlp_act arrays (neuron_scores.attribution)")
    _show(res.table(), max_rows, res.run_id, (res.plot,))


@analyze.command("top-examples")
@store_arg
@click.option("--neuron", default=None, help="LAYER:INDEX of an MLP neuron (per-token mlp_act).")
@click.option("--vector", "vector_id", default=None,
              help="A vector_id or a vector's name (the latest of that name), e.g. benevolence/intrinsic/resid_post.1.")
@click.option("--k", default=20, show_default=True)
@click.option("--where", default=None, help="SQL condition on tokens_info, e.g. \"role = 'response'\".")
@click.option("--window", default=5, show_default=True, help="Tokens of context each side.")
@no_record
@max_rows
def top_examples(store, neuron, vector_id, k, where, window, no_record, max_rows):
    """Token contexts where a neuron or a vector is highest (streams the per-token arrays).

    \b
    Example:
      actstore analyze top-examples demo-out/store --vector benevolence/intrinsic/resid_post.2 --k 10
    """
    from analyses.run_top_examples import TopExamplesSpec, run

    with _open(store) as st:
        spec = TopExamplesSpec(neuron=neuron, vector_id=_vector(st, vector_id), k=k, where=where, window=window,
                               record=not no_record)
        res = run(st, _recordable(st, spec))
    click.echo(res.what)
    cols = ["rank", "score", "context", "condition", "target_value", "language", "role", "record_id", "prompt_id"]
    _show(res.table()[cols] if res.examples else res.table(), max_rows, res.run_id)


@analyze.command()
@store_arg
@click.option("--component", default=None,
              help="shared, diff_means, intrinsic_unique, prompted_unique, int_only, prompt_only.  "
                   "[default: shared; diff_means in a store with one condition]")
@click.option("--condition", default=None, help="For diff_means: intrinsic (default) or prompted.")
@click.option("--layer", type=int, default=None, help="Layer to detail (default: the best-fitting one).")
@click.option("--run", "run_id", type=int, default=None, help="Run holding the vectors (default: the latest).")
@click.option("--language", default=None)
@click.option("--human", type=click.Path(), default=None, help="Value Portrait human_pvq21_scores.json (or its folder).")
@click.option("--permutations", "--n-perm", "n_perm", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Permutations for the p-values (circle fit, Mantel, partial Mantel) and random-direction draws.")
@click.option("--shuffles", "n_shuffle", default=20, show_default=True, type=click.IntRange(min=0),
              help="Vector sets rebuilt with labels shuffled within value, for that null "
                   "(0: skip; all in one streamed pass at one layer).")
@seed_opt
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG: values on the first two components, circle drawn.")
@no_record
def structure(store, component, condition, layer, run_id, language, human, n_perm, n_shuffle, seed, plot, no_record):
    """Cosine matrix, PCA + Procrustes circumplex fit (R^2, p), agreement with theory and humans.

    \b
    Example:
      actstore analyze structure demo-out/store --layer 2 --plot circle.png
    """
    import pandas as pd

    from analyses.run_structure import StructureSpec, run

    spec = StructureSpec(component=component, condition=condition, layer=layer, run_id=run_id, language=language,
                         human=human, n_perm=n_perm, n_shuffle=n_shuffle, seed=seed, record=not no_record, plot=plot)
    with _open(store) as st:
        res = run(st, _recordable(st, spec))
    if res.note:
        click.echo(res.note)
    _show(res.table(), 200)
    k = list(res.per_layer).index(res.layer)
    pc = res.r2_p_corrected[res.layer] if res.r2_p_corrected else float("nan")
    how = f"best-fitting layer; p corrected for that choice {pc:.4f}" if res.chosen else "chosen layer"
    click.echo(f"\nlayer {res.layer} ({how}): R^2 = {res.fit.r2:.3f}, permutation p = {res.fit.p_value:.4f}, "
               f"PC1+PC2 explain {res.fit.explained.sum():.1%}")
    click.echo("R^2 by group: " + ", ".join(f"{g} {r:.3f}" for g, r in res.fit.r2_by_group.items()))
    mt = res.mantel_theory
    click.echo(f"vs theoretical circumplex: Pearson {res.vs_theory.pearson:.3f} (Mantel p {mt.p[k]:.4f}, "
               f"corrected {mt.p_corrected[k]:.4f}), Spearman {res.vs_theory.spearman:.3f}")
    if res.vs_human is not None and res.mantel_human is not None:
        mh = res.mantel_human
        click.echo(f"vs human correlations ({res.n_participants} participants): Pearson {res.vs_human.pearson:.3f} "
                   f"(Mantel p {mh.p[k]:.4f}, corrected {mh.p_corrected[k]:.4f}), Spearman {res.vs_human.spearman:.3f}")
    click.echo(f"\nbaselines at layer {res.layer} (null rows: mean [95% range]; p: the model against that row):")
    _show(res.baseline_table(), 20)
    for sentence in res.sentences():
        click.echo(sentence)
    click.echo("cosine matrix:")
    _show(pd.DataFrame(res.cosine, columns=[v[:6] for v in res.values]).assign(value=list(res.values)), 20,
          res.run_id, (res.plot,))


@analyze.command()
@store_arg
@click.option("--site", default="resid_post", show_default=True)
@click.option("--layers", default="all", show_default=True)
@click.option("--tokens", default="response_mean", show_default=True, help="response_mean | last_prompt.")
@click.option("--judge", default=None)
@click.option("--language", "languages", multiple=True, help="Languages to compare (repeat or comma-list); default: all.")
@click.option("--value", "values", multiple=True,
              help="Values to compare (repeat or comma-list); default: every value with --min-count responses "
                   "in each group of each language.")
@click.option("--min-count", default=5, show_default=True, help="Fewest responses a group may have.")
@no_record
@max_rows
def crosslingual(store, site, layers, tokens, judge, languages, values, min_count, no_record, max_rows):
    """Vectors per language; cosine of the same value across languages; span share.

    \b
    Example:
      actstore analyze crosslingual demo-out/store --layers 1,2 --value benevolence,security
    """
    from analyses.run_crosslingual import CrosslingualSpec, run

    spec = CrosslingualSpec(site=site, layers=_layers(layers), tokens=tokens, judge=judge,
                            languages=_names(languages), values=_names(values), min_count=min_count,
                            record=not no_record)
    with _open(store) as st:
        res = run(st, _recordable(st, spec))
    if res.skipped:
        click.echo(f"left out (a group with fewer than {min_count} responses): {', '.join(res.skipped)}")
    _show(res.table(), max_rows, res.run_id)


@analyze.command("logit-lens")
@store_arg
@click.option("--vector", "vector_id", required=True,
              help="A vector_id or a vector's name (the latest of that name), e.g. benevolence/shared/resid_post.2.")
@click.option("--k", default=15, show_default=True)
@click.option("--no-norm", is_flag=True, help="Do not apply the stored final norm.")
@no_record
def logit_lens(store, vector_id, k, no_norm, no_record):
    """Tokens a vector promotes and suppresses through the stored unembedding, and the entropy.

    \b
    Example:
      actstore analyze logit-lens demo-out/store --vector benevolence/shared/resid_post.2 --k 5
    """
    from analyses.run_logit_lens import LogitLensSpec, run

    with _open(store) as st:
        res = run(st, _recordable(st, LogitLensSpec(vector_id=_vector(st, vector_id), k=k, use_norm=not no_norm,
                                                    record=not no_record)))
    click.echo(f"vector {res.vector_id} ({res.name}); final norm {'applied' if res.normed else 'not applied'}; "
               f"entropy {res.entropy:.3f} nats")
    _show(res.table(), k, res.run_id)


@analyze.command()
@store_arg
@click.option("--where", default=None, help="SQL condition on responses + prompts columns.")
@click.option("--by", default="condition", show_default=True, help="Column or SQL expression to group by; 'all' for one group.")
@click.option("--vocab-size", type=int, default=None,
              help="V of EAD.  [default: the store's model vocabulary size, else 50,000]")
@click.option("--repeats", "n_rep", default=20, show_default=True, type=click.IntRange(min=0),
              help="Equal-size subsamples per group (0: raw numbers only).")
@seed_opt
@no_record
@max_rows
def diversity(store, where, by, vocab_size, n_rep, seed, no_record, max_rows):
    """Distinct-1/2, EAD-1/2 and type-token ratio of responses chosen by SQL, also at equal size.

    \b
    Example:
      actstore analyze diversity demo-out/store --where "language = 'en'" --by condition
    """
    from analyses.run_diversity import DiversitySpec, run

    with _open(store) as st:
        res = run(st, _recordable(st, DiversitySpec(where=where, by=by, vocab_size=vocab_size, n_rep=n_rep,
                                                    seed=seed, record=not no_record)))
    _show(res.table(), max_rows, res.run_id)
    for sentence in res.sentences():
        click.echo(sentence)


@analyze.command()
@store_arg
@click.option("--sweep", "sweep_id", default=None, help="A steering sweep id (default: the latest).")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG: metric vs alpha per vector kind.")
@max_rows
def steering(store, sweep_id, plot, max_rows):
    """A recorded steering sweep as a table and a plot (the sweep itself runs with 'actstore steer').

    \b
    Example:
      actstore analyze steering demo-out/store --plot sweep.png
    """
    from analyses.steering.report import report

    with _open(store) as st:
        res = report(st, sweep_id, plot)
    _show(res.table, max_rows, plots=(res.plot,))
    click.echo(f"sweep {res.sweep_id}")

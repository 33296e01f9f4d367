"""The ``actstore`` command: a thin skin over the library.

Each command parses, makes one library call and prints. Errors become one line on stderr (exit 1,
or 2 for usage) in one place, :class:`Main`; ``--debug`` shows the traceback. Command groups that
need the model stack (``ingest``, ``analyze``, ``steer``, ``demo``) live in their own packages and
are found through the ``actstore.commands`` entry points, loaded only when used: this package
never imports them (or torch).
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import entry_points
from pathlib import Path

import click

from actstore.errors import ActstoreError

_EP_GROUP = "actstore.commands"


def _plugins() -> dict:
    return {ep.name: ep for ep in entry_points(group=_EP_GROUP)}


class Main(click.Group):
    """Root group: lazy plugin commands and the one place errors are turned into lines."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_plugins()))

    def get_command(self, ctx: click.Context, name: str):
        cmd = super().get_command(ctx, name)
        if cmd is None and name in _plugins():
            try:
                cmd = _plugins()[name].load()
            except ImportError as err:
                return _unavailable(name, err)
        return cmd

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ActstoreError as err:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        except Exception as err:
            # DuckDB reads catalog blocks lazily: damage found mid-command is one line too.
            from actstore.catalog import damage

            bad = damage(err)
            if bad is None or (ctx.obj and ctx.obj.get("debug")):
                raise
            click.echo(f"error: {bad}", err=True)
            ctx.exit(bad.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


def _unavailable(name: str, err: ImportError) -> click.Command:
    """A stand-in for a command whose package cannot be imported here (e.g. no torch)."""
    missing = getattr(err, "name", None) or str(err)

    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
                   help=f"(unavailable here: needs {missing})")
    def stub() -> None:
        from actstore.errors import UsageError

        raise UsageError(f"'actstore {name}' needs {missing}, which is not installed; "
                         "install the model stack: pip install torch==2.13.0 'actstore[models]'")

    return stub


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.version_option(package_name="actstore")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """actstore: run a model once, query its activations for weeks.

    \b
    Example:
      actstore demo demo-out --size small && actstore info demo-out/store
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def existing_store(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """Callback of a STORE argument: a local path that is not there fails at once (exit 1), before the
    command imports the store's (or an analysis's) heavy modules. URLs are checked when opened."""
    from actstore.errors import StoreNotFoundError

    if value and "://" not in value and not Path(value).expanduser().exists():
        raise StoreNotFoundError(f"no store at {value}; check the path, or create one with 'actstore ingest run'")
    return value


store_arg = click.argument("store", metavar="STORE", callback=existing_store)


def _open(path: str):
    import actstore

    return actstore.open(path, read_only=True)


def _human(n: float) -> str:
    """Bytes in powers of 1024, named as such (what ``du -h`` and ``ls -lh`` print as K, M, G)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@main.command()
@store_arg
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(store: str, as_json: bool) -> None:
    """Model, sizes, arrays, counts and runs of a store.

    \b
    Example:
      actstore info demo-out/store
      actstore info demo-out/store --json
    """
    from actstore.summary import summarize

    with _open(store) as st:
        s = summarize(st)
    if as_json:
        click.echo(json.dumps(s, indent=2, default=str))
        return
    m = s["model"]
    where = "remote: catalog + committed arrays" if s["remote"] else "on disk, as du counts it"
    segs = f", {s['segments']} segments" if s["segments"] > 1 else ""
    click.echo(f"store     {s['path']}  (format {s['format_version']}, {_human(s['disk_bytes'])} {where}{segs})")
    if m:
        click.echo(f"model     {m['name']}  {m['family'] or ''} {m['dtype']}  {m['n_layers']} layers, "
                   f"d_model {m['d_model']}, d_mlp {m['d_mlp']}")
    c = s["counts"]
    click.echo("counts    " + ", ".join(f"{v} {k}" for k, v in c.items()))
    if s["arrays"]:
        click.echo("arrays")
        for a in s["arrays"]:
            click.echo(f"  {a['what']:<28} layers {a['layers']:<12} width {a['width']:<6} {a['dtype']:<9} "
                       f"{a['codec']:<6} {_human(a['bytes'])}")
    if s["runs"]:
        shown = len(s["runs"])
        more = (f" (the latest {shown} of {s['n_runs']}; all: actstore sql {store} \"SELECT * FROM runs\")"
                if s["n_runs"] > shown else "")
        click.echo("runs" + more)
        for r in s["runs"]:
            click.echo(f"  #{r['run_id']:<3} {r['kind']:<12} {r['status']:<8} {r['started_at']}")


class _QueryCommand(click.Command):
    """A command whose text arguments may start with ``--``: SQL that opens with a ``-- comment``.

    A token that starts with ``-`` and holds whitespace cannot be an option name, so it is moved past
    the ``--`` separator and parsed as an argument; option typos still get click's usage error.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        cut = args.index("--") if "--" in args else len(args)
        head, tail = args[:cut], args[cut + 1:]
        texts = [a for a in head if a.startswith("-") and any(c.isspace() for c in a)]
        if texts:
            args = [a for a in head if a not in texts] + ["--", *texts, *tail]
        return super().parse_args(ctx, args)


@main.command(cls=_QueryCommand)
@store_arg
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to a file instead of stdout.")
@click.option("--max-rows", default=40, show_default=True, help="Rows shown by --format table.")
def sql(store: str, query: str, fmt: str, out: str | None, max_rows: int) -> None:
    """Run a SQL QUERY on the store's catalog (DuckDB dialect; read-only).

    \b
    Tables: prompts responses labels records tokens vectors neuron_scores runs arrays vocab
    Views:  records_info tokens_info record_labels
    The SQL runs sandboxed: it cannot write or read files (COPY ... TO, ATTACH, read_csv),
    load extensions or change settings. Export with --format and --out instead.
    Example: actstore sql runs/demo "SELECT condition, count(*) FROM records_info GROUP BY 1"
    Example: actstore sql runs/demo "SELECT * FROM vectors" --format parquet --out vectors.parquet
    """
    from actstore.catalog import query_error
    from actstore.errors import UsageError

    if fmt == "parquet" and not out:
        raise UsageError("--format parquet needs --out FILE.parquet")
    with _open(store) as st:
        if out:
            _check_out(st, out)
        rel = st.sql(query)
        if rel is None:
            return
        try:  # a SELECT runs here, when it is fetched
            if fmt == "parquet" and out is not None:  # checked above: parquet needs --out
                n = _write_parquet(rel, Path(out))
                click.echo(f"wrote {out} ({n} rows)", err=True)
                return
            df = rel.df()
        except Exception as err:
            bad = query_error(err, st.location, query)
            if bad is None:
                raise
            raise bad from None
        if fmt == "table":
            import pandas as pd

            from actstore.display import table_text

            with pd.option_context("display.max_rows", max_rows, "display.max_columns", 50,
                                   "display.width", 200, "display.max_colwidth", 60):
                text = table_text(df, max_rows)
        elif fmt == "csv":
            text = df.to_csv(index=False)
        else:
            text = df.to_json(orient="records", lines=True, date_format="iso", force_ascii=False)
    if out:
        Path(out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text.rstrip("\n"))


def _check_out(st, out: str) -> None:
    """An export never goes into the store it reads (it could overwrite a chunk or the catalog)."""
    from actstore.errors import UsageError

    if st.is_remote:
        return
    root, dest = Path(st.root).resolve(), Path(out).expanduser().resolve()
    if dest == root or root in dest.parents:
        raise UsageError(f"--out {out} is inside the store {st.root}, which is read-only; write the export "
                         "somewhere else")


def _write_parquet(rel, out: Path) -> int:
    """Stream a relation into a Parquet file with pyarrow (DuckDB's own COPY is sandboxed off),
    batch by batch, through a temp file renamed into place: a failed export leaves no file."""
    import os

    import pyarrow.parquet as pq

    reader = rel.to_arrow_reader(1 << 16)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    n = 0
    try:
        with pq.ParquetWriter(tmp, reader.schema) as w:
            for batch in reader:
                w.write_batch(batch)
                n += batch.num_rows
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return n


@main.command()
@store_arg
@click.option("--quiet", is_flag=True, help="Print only problems (no progress line, no summary).")
def verify(store: str, quiet: bool) -> None:
    """Check every chunk against its checksum and every catalog row against the arrays.

    \b
    Example:
      actstore verify demo-out/store
    """
    from actstore.errors import IntegrityError
    from actstore.publish import verify_progress
    from actstore.verify import verify as run_verify

    with _open(store) as st:
        bar, step = verify_progress(st, "verify", show=not quiet)
        with bar:
            rep = run_verify(st, progress=step)
    for p in rep.problems:
        click.echo(f"  {p}", err=True)
    if not rep.ok:
        raise IntegrityError(f"{len(rep.problems)} problem(s) in {store}; see above")
    if not quiet:
        click.echo(f"ok: {rep.arrays} arrays, {rep.chunks} chunks, {_human(rep.bytes)} checked")


@main.command()
@store_arg
@click.argument("dest")
@click.option("--full", is_flag=True, help="copy every file, even those an earlier publish at DEST holds unchanged")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def publish(store: str, dest: str, full: bool, quiet: bool) -> None:
    """Copy STORE to DEST (a directory, or a bucket URL such as s3://b/x) with its checksums, verified.

    \b
    Only committed data is copied; refused while a writer holds STORE. Publishing again to the
    same DEST copies only the chunk files that changed. Serve a published directory with any
    static HTTP server and open it by URL:
    Example: actstore publish runs/demo /srv/www/demo && actstore info https://host/demo
    """
    from actstore.publish import publish as run_publish

    rep = run_publish(store, dest, full=full, progress=not quiet)
    kept = f", {rep.unchanged} unchanged files kept" if rep.unchanged else ""
    click.echo(f"published {rep.arrays} arrays ({rep.files} files, {_human(rep.bytes)} copied{kept}) to {rep.dest}; "
               f"verified {rep.chunks_verified} chunks")


@main.command()
@click.argument("url")
@click.argument("dest", metavar="DIR")
@click.option("--layers", help="Layers to copy, e.g. 3,7-9 (default: all).")
@click.option("--sites", help="Sites to copy, e.g. resid_post or resid_post,mlp_act (default: all).")
@click.option("--pools", help="Pools to copy: token, mean_response, last_prompt (default: all).")
@click.option("--no-weights", is_flag=True, help="Leave the stored weights behind.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def pull(url: str, dest: str, layers: str | None, sites: str | None, pools: str | None, no_weights: bool,
         quiet: bool) -> None:
    """Make a local store in DIR from the store at URL (or path), with just the arrays asked for.

    \b
    The whole catalog comes along (SQL sees every record); only the chosen arrays' chunks are
    downloaded, and the copy is verified before it appears in DIR.
    Example: actstore pull https://host/demo runs/demo-l14 --layers 14 --sites resid_post
    """
    from actstore.publish import Selection
    from actstore.publish import pull as run_pull
    from actstore.site import parse_layers

    def _list(text: str | None) -> tuple[str, ...] | None:
        return tuple(x.strip() for x in text.split(",") if x.strip()) if text else None

    sel = Selection(layers=tuple(parse_layers(layers)) if layers else None, sites=_list(sites),
                    pools=_list(pools), weights=not no_weights)
    rep = run_pull(url, dest, sel, progress=not quiet)
    click.echo(f"pulled {rep.arrays} arrays ({rep.files} files, {_human(rep.bytes)}) into {rep.dest}; "
               f"verified {rep.chunks_verified} chunks")


@main.command()
@click.argument("parts", nargs=-1, required=True)
@click.option("--out", required=True, help="The merged store to create (a new directory).")
@click.option("--copy", is_flag=True, help="Copy chunk files instead of hard-linking them (across filesystems).")
@click.option("--no-verify", is_flag=True, help="Skip reading every chunk back against its checksum.")
def merge(parts: tuple[str, ...], out: str, copy: bool, no_verify: bool) -> None:
    """Join the part stores of a sharded ingest into one store, without copying array data.

    \b
    PARTS are part stores, or a STORE.parts directory holding part-I-of-N stores (merged in
    shard order, all N required); other stores are merged in the order given. Chunk files are
    hard-linked; the parts are left unchanged.
    Example: actstore merge runs/demo.parts --out runs/demo
    """
    from actstore.merge import merge as run_merge

    rep = run_merge(list(parts), out, mode="copy" if copy else "link", verify=not no_verify)
    checked = f"; verified {rep.chunks_verified} chunks" if rep.chunks_verified is not None else ""
    click.echo(f"merged {rep.parts} parts ({rep.records} records, {rep.rows} rows) into {rep.out}: "
               f"{rep.segments} segments, {rep.files_linked} files linked, {rep.files_copied} copied{checked}")


def run() -> None:  # pragma: no cover - console script shim
    main(obj={})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(obj={}))

"""Capture-stage wall time against bare forward passes, and the write path alone against the disk.

    python benchmarks/bench_ingest.py                                # SmolLM2-135M's shape, fp32 and bf16, CPU
    python benchmarks/bench_ingest.py --preset small --dtype bfloat16   # the old 8-layer shape
    python benchmarks/bench_ingest.py --model DIR [--gguf-file F]     # a real checkpoint (from_pretrained)
    python benchmarks/bench_ingest.py --preset qwen2.5-7b --device cuda --dtype bfloat16 --tokens 4000 \
        --buffer-mb 3000 --repeat 2 --threads 4    # on a GPU (4,000 tokens = 4.9 GB a store; gpu_ingest.sh)

Presets are randomly initialised models of a real checkpoint's exact shape (no download). Per dtype,
both sides run the same forward batches, planned once by ``ingest.packing`` from the same records:

* bare: the decoder stack only (``model.model``: blocks and final norm, no unembedding: the
  capture stops after the deepest stored block, so the logits would be work only one side does);
* ingest: ``ingest.stage_capture.capture_records`` into a fresh store, all layers, both sites,
  per-token arrays and both pools, until the store is closed (everything durable and published);
* write path alone: the very store batches that ingest appends (captured once beforehand, kept in
  memory), appended to a fresh store with ``Store.append`` and closed, no forward pass; against
  the disk's sequential bandwidth measured in the same round (one file of the same byte count,
  4 MiB writes, one fsync, in the same directory), the faster of a write through the page cache
  and one with O_DIRECT (a page-cache write can be bound by the kernel's copy, not the disk);
* write path, long store (``--long K``, default 4): the same batches K times into one store, as a
  long ingest writes them. A short store deleted and written again is flattered: its pages reuse
  the memory the deletion just freed, where a long ingest's every new page needs fresh memory;
* bare + raw writes (unless ``--no-raw``): the bare forward with the plainest writer of the same
  bytes beside it (after each store batch's forward passes, its byte count to one file, O_DIRECT,
  4 MiB writes, beside the next batch's; one fsync at the end): what writing them to this disk
  costs the forward pass whoever writes them, so ingest / (bare + raw) is what the store adds. On
  a VM the disk's work can run on the guest's own cores (``steal`` in /proc/stat, printed);
* unless ``--no-page-cache``: ingest again with ACTSTORE_DIRECT_IO=0, the page cache only. By default the split schedule (below)
  defers each store batch's aligned bytes to its commit, which writes them with O_DIRECT straight
  from the capture's buffers (``Store.write_batch(defer=True)``); this side is the same ingest
  without that;
* unless ``--no-direct``: ingest and the write path again with ACTSTORE_DIRECT_IO=1 (every raw
  chunk write's aligned middle written directly, synchronously, through a staging buffer);
* unless ``--no-alt``: ingest with the other writer schedule. Where the forward pass has every
  core (a CPU model, ``--threads`` = the usable cores) ingest splits each append: the main thread
  writes a store batch's arrays between forward passes, the writer thread fsyncs and commits it
  beside the next (``ingest.stage_capture.split_writes``); elsewhere the writer thread appends
  while the forward runs. The other side runs the other schedule in the same rounds.

Rounds alternate the sides (bare, ingest, write, disk) and the medians are printed: on a shared
machine the load of the moment swings wall times more than the difference being measured.
Goals (issue 17): ingest / bare <= 1.15 in float32 on a 2-core CPU machine; the write path alone
>= 0.8 of the disk's bandwidth.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESETS = {
    # name: (family, hidden, intermediate, layers, heads, kv_heads, vocab, tied embeddings)
    "tiny": ("llama", 64, 128, 2, 4, 2, 256, True),  # for tests/benchmarks only
    "small": ("llama", 512, 1408, 8, 8, 8, 32000, False),
    # SmolLM2-135M-Instruct's shape (config.json of HuggingFaceTB/SmolLM2-135M-Instruct).
    "smollm2-135m": ("llama", 576, 1536, 30, 9, 3, 49152, True),
    # Qwen2.5-7B-Instruct's shape (config.json of the hub checkpoint), randomly initialised.
    "qwen2.5-7b": ("qwen2", 3584, 18944, 28, 28, 4, 152064, False),
}


def build_model(preset: str, dtype: str, device: str):
    import torch
    import transformers as tf

    family, hidden, inter, layers, heads, kv, vocab, tied = PRESETS[preset]
    cls = tf.LlamaConfig if family == "llama" else tf.Qwen2Config
    cfg = cls(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
              num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=4096,
              tie_word_embeddings=tied)
    torch.manual_seed(0)
    with torch.device(device):
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    return model.eval()


def load_model(name: str, gguf_file: str | None, dtype: str, device: str):
    import torch
    import transformers as tf

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    model = tf.AutoModelForCausalLM.from_pretrained(name, dtype=getattr(torch, dtype), **kw)
    return model.to(device).eval()


def make_records(n_tokens: int, vocab: int, seed: int = 0):
    """Records of 64-448 tokens (a third prompt), random ids, until ``n_tokens`` in all."""
    from ingest.stage_capture import CaptureRecord
    from ingest.tokenize import RESPONSE, SYSTEM, USER, TokenizedRecord

    rng = np.random.default_rng(seed)
    out, total, i = [], 0, 0
    while total < n_tokens:
        n = int(rng.integers(64, 449))
        plen = n // 3
        roles = np.full(n, RESPONSE, np.int8)
        roles[:plen] = USER
        roles[: plen // 3] = SYSTEM
        ids = rng.integers(10, vocab, size=n).astype(np.int32)
        out.append(CaptureRecord(f"r{i:06d}", f"p{i:06d}", TokenizedRecord(ids, roles, plen, "")))
        total += n
        i += 1
    return out


def bare(model, records, batches, pad: int = 0, after=None) -> float:
    """Seconds of the forward passes alone. ``after(k)``: called once store batch ``k``'s forward
    passes have run (on a GPU, once they are done), as ingest hands that batch to its writer."""
    import torch

    from ingest.tokenize import collate

    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        for k, sb in enumerate(batches):
            for fb in sb.forward:
                ids, mask, _ = collate([records[i].tokens for i in fb], pad, side="left")
                m = torch.from_numpy(mask)
                pos = (m.cumsum(1) - 1).clamp(min=0)
                model.model(input_ids=torch.from_numpy(ids).to(device), attention_mask=m.to(device),
                            position_ids=pos.to(device), use_cache=False)
            if after is not None:
                sync()
                after(k)
    sync()
    return time.perf_counter() - t0


def _write_block() -> np.ndarray:
    """4 MiB of random bytes, page-aligned (an anonymous mapping), as O_DIRECT needs: what the disk
    probe and the raw writer write, block after block."""
    import mmap

    block = np.frombuffer(mmap.mmap(-1, 4 << 20), dtype=np.uint8)
    block[:] = np.random.default_rng(0).integers(0, 255, size=4 << 20, dtype=np.uint8)
    return block


def bare_raw_writes(model, records, batches, nbytes: list[int], root: Path) -> tuple[float, int]:
    """The bare forward with the plainest writer of the same bytes beside it: once store batch
    ``k``'s forward passes have run, a thread writes ``nbytes[k]`` (what ingest stores for that
    batch) to the end of one file, 4 MiB at a time, O_DIRECT from an aligned buffer where the file
    system takes it, while the next batch's forward passes run, as ingest's commits do; at the end
    the forward waits for the last batch's bytes and one fsync. No store: no chunk files, arrays,
    checksums or catalog, and nothing copied. What it costs over the bare forward is what putting
    these bytes on this machine's disk costs the forward pass, whoever writes them (on a VM: the
    hypervisor doing the I/O on the guest's CPUs, the DMA reading memory); ingest can only be
    slower than this. Returns (seconds, bytes written: each batch's rounded up to whole 4 KiB)."""
    import queue
    import threading

    block = _write_block()
    path = root / "raw-writes.bin"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_DIRECT", 0), 0o644)
    except OSError:  # a file system without O_DIRECT
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    todo: queue.Queue = queue.Queue()
    failed: list[BaseException] = []
    off = 0

    def writer() -> None:
        nonlocal off
        while (n := todo.get()) is not None:
            n = -(-n // 4096) * 4096  # whole blocks: O_DIRECT writes block-aligned lengths
            try:
                while n > 0:
                    w = os.pwrite(fd, block[: min(len(block), n)].data, off)
                    off, n = off + w, n - w
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                failed.append(e)
            todo.task_done()

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        t0 = time.perf_counter()
        bare(model, records, batches, after=lambda k: todo.put(nbytes[k]))
        todo.join()
        os.fsync(fd)
        seconds = time.perf_counter() - t0
    finally:
        todo.put(None)
        th.join()
        os.close(fd)
        path.unlink()
    if failed:
        raise failed[0]
    return seconds, off


def stolen_seconds() -> float | None:
    """CPU seconds the hypervisor has taken from this (virtual) machine since boot, all CPUs
    (``steal`` in /proc/stat); None where there is no such count."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class _Tok:
    pad_token_id = 0


def _new_store(root: Path, model, arrays):
    import actstore

    st = actstore.open(root, read_only=False, create=True)
    st.set_model(actstore.ModelInfo("bench", arrays.dtype, model.config.num_hidden_layers, arrays.d_model,
                                    arrays.d_mlp))
    return st


def _arrays_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in (root / "arrays").rglob("*") if f.is_file())


def ingest(model, records, arrays, token_budget: int, buffer_mb: int, root: Path,
           split: bool | None = None) -> tuple[float, int]:
    """``split``: the writer schedule (None: ingest's own choice, ``split_writes``)."""
    from ingest.stage_capture import capture_records

    st = _new_store(root, model, arrays)
    t0 = time.perf_counter()
    capture_records(st, model, _Tok(), records, arrays, token_budget=token_budget,
                    batch_bytes=buffer_mb * (1 << 20) // 3, run_id=None, quiet=True, split=split)
    st.close()
    return time.perf_counter() - t0, _arrays_bytes(root)


class _Keep:
    """A stand-in store for ``capture_records`` that keeps each store batch it is given (the batch
    owns its arrays): the activations that the write path alone then appends."""

    def __init__(self) -> None:
        self.specs, self.batches = [], []

    def declare_arrays(self, specs) -> None:
        self.specs = list(specs)

    def append(self, batch, run_id=None) -> int:
        # A copy: the capture stage reuses a batch's buffers once its append has returned.
        self.batches.append(replace(batch, token_arrays={k: a.copy() for k, a in batch.token_arrays.items()},
                                    record_arrays={k: a.copy() for k, a in batch.record_arrays.items()}))
        return len(self.batches) - 1


class _Discard(_Keep):
    """A stand-in store that drops every batch: capture with no write path (hooks and copies only)."""

    def append(self, batch, run_id=None) -> int:
        return 0


def capture_only(model, records, arrays, token_budget: int, buffer_mb: int) -> float:
    from ingest.stage_capture import capture_records

    t0 = time.perf_counter()
    capture_records(_Discard(), model, _Tok(), records, arrays, token_budget=token_budget,
                    batch_bytes=buffer_mb * (1 << 20) // 3, run_id=None, quiet=True)
    return time.perf_counter() - t0


def precompute(model, records, arrays, token_budget: int, buffer_mb: int) -> _Keep:
    from ingest.stage_capture import capture_records

    keep = _Keep()
    capture_records(keep, model, _Tok(), records, arrays, token_budget=token_budget,
                    batch_bytes=buffer_mb * (1 << 20) // 3, run_id=None, quiet=True)
    return keep


def write_only(model, arrays, keep: _Keep, root: Path, times: int = 1) -> tuple[float, int, int, float]:
    """Append the kept batches to a fresh store and close it: (seconds, activation bytes, file
    bytes, seconds in the appends alone: without declaring the arrays and closing the store, which
    happen once per store however long the ingest). ``times`` > 1: the batches that many times
    (each copy after the first under new keys and response ids), a long store: a short one is
    flattered by the memory that deleting the previous round's store has just freed (the page
    cache reuses it), where a long ingest writes far more than that."""
    st = _new_store(root, model, arrays)
    t0 = time.perf_counter()
    st.declare_arrays(keep.specs)
    t1 = time.perf_counter()
    for k in range(times):
        for b in keep.batches:
            st.append(b if k == 0 else replace(b, key=f"{b.key}:{k}", response_ids=[f"{r}:{k}" for r in b.response_ids]))
    t2 = time.perf_counter()
    st.close()
    seconds = time.perf_counter() - t0
    payload = sum(a.nbytes for b in keep.batches for a in (*b.token_arrays.values(), *b.record_arrays.values()))
    return seconds, times * payload, _arrays_bytes(root), t2 - t1


def disk_write_bandwidth(root: Path, n_bytes: int, direct: bool = False) -> float:
    """Bytes/s of sequential 4 MiB writes of one file followed by one fsync (what a durable append
    costs): through the page cache, or with O_DIRECT from an aligned buffer (``direct``; the disk's
    own speed where the kernel's copy into the page cache is the slower part). 0 where the file
    system refuses O_DIRECT."""
    block = _write_block()
    n_bytes = n_bytes // 4096 * 4096
    path = root / "disk-probe.bin"
    t0 = time.perf_counter()
    if direct and not hasattr(os, "O_DIRECT"):
        return 0.0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (os.O_DIRECT if direct else 0), 0o644)
    except OSError:
        return 0.0
    try:
        written = 0
        while written < n_bytes:
            written += os.write(fd, block[: min(len(block), n_bytes - written)].data)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return written / seconds


def run_dtype(args, dtype: str, base: Path) -> dict:
    import torch

    from ingest.packing import plan
    from ingest.stage_capture import ArrayPlan, split_writes

    if args.model:
        model = load_model(args.model, args.gguf_file, dtype, args.device)
    else:
        model = build_model(args.preset, dtype, args.device)
    cfg = model.config
    arrays = ArrayPlan(tuple(range(cfg.num_hidden_layers)), ("resid_post", "mlp_act"), True,
                       ("mean_response", "last_prompt"), dtype, cfg.hidden_size, cfg.intermediate_size)
    records = make_records(args.tokens, cfg.vocab_size)
    n_tok = sum(r.tokens.input_ids.shape[0] for r in records)
    lengths = np.array([r.tokens.input_ids.shape[0] for r in records])
    batch_bytes = args.buffer_mb * (1 << 20) // 3
    batches = plan(lengths, [r.response_id for r in records], args.token_budget, arrays.row_bytes(),
                   arrays.record_bytes(), batch_bytes)
    n_fwd = sum(len(sb.forward) for sb in batches)
    split = split_writes(model)
    name = args.model or args.preset
    print(f"\n== {name} {dtype} on {args.device} ({torch.get_num_threads()} torch threads): "
          f"{cfg.num_hidden_layers} layers, d_model {cfg.hidden_size}, d_mlp {cfg.intermediate_size}, "
          f"{len(arrays.specs())} arrays ({sum(s.key.pool == 'token' for s in arrays.specs())} per token)")
    print(f"records {len(records)}, tokens {n_tok}, forward batches {n_fwd}, store batches {len(batches)}, "
          f"{arrays.row_bytes() / 1024:.1f} KiB per token; ingest's writer schedule: "
          f"{'split (writes between forward passes)' if split else 'overlapped (whole appends beside the forward)'}",
          flush=True)

    bare(model, records, [type(batches[0])(batches[0].forward[:1])])  # warm-up: kernels, allocator
    keep = precompute(model, records, arrays, args.token_budget, args.buffer_mb) if args.write_rounds else None
    r = {k: [] for k in ("bare", "ingest", "c_bare", "c_ing", "cap", "c_cap", "write", "c_write", "disk",
                         "ing_dir", "c_ing_dir", "ing_pc", "c_ing_pc", "ing_alt", "c_ing_alt", "write_dir", "c_write_dir", "disk_buf", "disk_dir", "write_app",
                         "long", "c_long", "raw", "c_raw", "st_bare", "st_ing", "st_raw")}
    # Rates count the activation bytes appended (``payload``), not the chunk files' sizes: a raw
    # chunk file is made full size at once, so its tail is zeros that were never written.
    payload = arrays.row_bytes() * n_tok + arrays.record_bytes() * len(records)
    per_batch = []  # the activation bytes of each store batch: what the raw writer writes after it
    for sb in batches:
        recs = np.concatenate(sb.forward)
        per_batch.append(arrays.row_bytes() * int(lengths[recs].sum()) + arrays.record_bytes() * len(recs))
    assert sum(per_batch) == payload
    stolen = stolen_seconds() is not None
    size = 0

    def side(key: str, run, *a, steal: str | None = None, cpu: str | None = None, **kw):
        """One side of a round, ``run(*a, **kw)``: its seconds (what it returns, or its first item) to
        ``r[key]``, the process's CPU seconds to ``r[cpu]`` (default ``"c_" + key``) and, given
        ``steal``, the hypervisor's steal to ``r[steal]``. Returns what ``run`` returned."""
        c0, s0 = time.process_time(), stolen_seconds()
        got = run(*a, **kw)
        r[cpu or "c_" + key].append(time.process_time() - c0)
        if steal is not None and stolen:
            r[steal].append(stolen_seconds() - s0)
        r[key].append(got[0] if isinstance(got, tuple) else got)
        return got

    ing_args = (model, records, arrays, args.token_budget, args.buffer_mb)
    for k in range(args.repeat):
        side("bare", bare, model, records, batches, steal="st_bare")
        _, size = side("ingest", ingest, *ing_args, base / "ingest", steal="st_ing", cpu="c_ing")
        if args.raw:
            _, wrote = side("raw", bare_raw_writes, model, records, batches, per_batch, base, steal="st_raw")
            assert payload <= wrote < payload + 4096 * len(batches), (wrote, payload)
        shutil.rmtree(base / "ingest")
        # The same ingest with the page cache only (no deferred direct writes), and with direct
        # I/O on for every write (ACTSTORE_DIRECT_IO=1; off by default).
        for key, env, wanted in (("ing_pc", "0", args.page_cache), ("ing_dir", "1", args.direct)):
            if wanted:
                with mock.patch.dict(os.environ, ACTSTORE_DIRECT_IO=env):
                    side(key, ingest, *ing_args, base / "ingest")
                shutil.rmtree(base / "ingest")
        if args.alt:  # the other writer schedule
            side("ing_alt", ingest, *ing_args, base / "ingest", split=not split)
            shutil.rmtree(base / "ingest")
        side("cap", capture_only, *ing_args)
        line = (f"  round {k}: bare {r['bare'][-1]:.2f} s ({r['c_bare'][-1]:.2f} s CPU), "
                f"ingest {r['ingest'][-1]:.2f} s ({r['c_ing'][-1]:.2f} s CPU), "
                + (f"bare + raw writes {r['raw'][-1]:.2f} s ({r['c_raw'][-1]:.2f} s CPU), " if args.raw else "")
                + (f"page cache only {r['ing_pc'][-1]:.2f} s ({r['c_ing_pc'][-1]:.2f} s CPU), "
                   if args.page_cache else "")
                + f"capture without writes {r['cap'][-1]:.2f} s ({r['c_cap'][-1]:.2f} s CPU)")
        if args.direct:
            line += f", ingest direct {r['ing_dir'][-1]:.2f} s ({r['c_ing_dir'][-1]:.2f} s CPU)"
        if args.alt:
            line += (f", ingest {'overlapped' if split else 'split'} {r['ing_alt'][-1]:.2f} s "
                     f"({r['c_ing_alt'][-1]:.2f} s CPU)")
        if keep is not None and k < args.write_rounds:
            for key, env in (("write", "0"), ("write_dir", "1")) if args.direct else (("write", "0"),):
                with mock.patch.dict(os.environ, ACTSTORE_DIRECT_IO=env):
                    secs, kept, _, app = side(key, write_only, model, arrays, keep, base / "write")
                if key == "write":
                    r["write_app"].append(app)
                assert kept == payload, (kept, payload)
                shutil.rmtree(base / "write")
                line += (f", write path{' direct' if env == '1' else ''} {secs:.2f} s "
                         f"({r['c_' + key][-1]:.2f} s CPU, {payload / secs / 2**20:,.0f} MiB/s)")
            if args.long:
                secs, n_long, _, _ = side("long", write_only, model, arrays, keep, base / "write", times=args.long)
                shutil.rmtree(base / "write")
                line += (f", long store {n_long / 2**30:.1f} GiB {secs:.2f} s ({r['c_long'][-1]:.2f} s CPU, "
                         f"{n_long / secs / 2**20:,.0f} MiB/s)")
            # The disk: the faster of a buffered and a direct sequential write of the same bytes.
            r["disk_buf"].append(disk_write_bandwidth(base, payload))
            r["disk_dir"].append(disk_write_bandwidth(base, payload, direct=True))
            r["disk"].append(max(r["disk_buf"][-1], r["disk_dir"][-1]))
            line += (f", disk {r['disk_buf'][-1] / 2**20:,.0f} MiB/s buffered, "
                     f"{r['disk_dir'][-1] / 2**20:,.0f} MiB/s direct")
        print(line, flush=True)
    med = {k: statistics.median(v) for k, v in r.items() if v}
    b, i = med["bare"], med["ingest"]
    out = {"dtype": dtype, "tokens": n_tok, "bare_s": b, "ingest_s": i, "ratio": i / b,
           "cpu_ratio": med["c_ing"] / med["c_bare"], "bytes": payload, "file_bytes": size}
    print(f"bare forward   {b:8.2f} s   {n_tok / b:10,.0f} tokens/s")
    print(f"ingest         {i:8.2f} s   {n_tok / i:10,.0f} tokens/s   ratio {i / b:.3f} (median of {args.repeat}; "
          f"goal <= 1.15); CPU-time ratio {out['cpu_ratio']:.3f}; {payload / 2**20:,.0f} MiB of activations "
          f"at {payload / i / 2**20:,.0f} MiB/s ({size / 2**20:,.0f} MiB of files)")
    if "ing_pc" in med:
        ip = med["ing_pc"]
        out.update(ratio_page_cache=ip / b)
        print(f"  page cache   {ip:8.2f} s   {n_tok / ip:10,.0f} tokens/s   ratio {ip / b:.3f}: the same ingest with "
              f"ACTSTORE_DIRECT_IO=0, no deferred direct writes (CPU-time ratio {med['c_ing_pc'] / med['c_bare']:.3f})")
    if "ing_dir" in med:
        ib = med["ing_dir"]
        out.update(ratio_direct=ib / b)
        print(f"  direct I/O   {ib:8.2f} s   {n_tok / ib:10,.0f} tokens/s   ratio {ib / b:.3f}: the same ingest with "
              f"ACTSTORE_DIRECT_IO=1 (CPU-time ratio {med['c_ing_dir'] / med['c_bare']:.3f})")
    if "ing_alt" in med:
        ia = med["ing_alt"]
        out.update(ratio_alt=ia / b, split=split)
        print(f"  {'overlapped' if split else 'split':<12} {ia:8.2f} s   {n_tok / ia:10,.0f} tokens/s   ratio {ia / b:.3f}: the "
              f"same ingest with the other writer schedule (CPU-time ratio {med['c_ing_alt'] / med['c_bare']:.3f})")
    if "raw" in med:
        rw = med["raw"]
        out.update(raw_s=rw, ratio_raw=rw / b, ingest_over_raw=i / rw)
        print(f"bare + raw     {rw:8.2f} s   {n_tok / rw:10,.0f} tokens/s   ratio {rw / b:.3f}: the bare forward with the "
              f"same bytes written beside it by the plainest writer (one file, O_DIRECT, 4 MiB writes, one fsync; no "
              f"store): what putting them on this disk costs the forward pass here, whoever writes them")
        print(f"  ingest / bare + raw {i / rw:.3f}: what the store adds beyond that (chunk files, checksums, catalog, "
              f"the capture's copies)")
    if "st_bare" in med:
        out.update(stolen_bare=med["st_bare"], stolen_ingest=med["st_ing"])
        print(f"stolen CPU     bare {med['st_bare']:.2f} s, ingest {med['st_ing']:.2f} s"
              + (f", bare + raw {med['st_raw']:.2f} s" if "st_raw" in med else "")
              + " (medians; /proc/stat steal: CPU time the hypervisor took from this VM's cores, all cores)")
    c = med["cap"]
    print(f"capture only   {c:8.2f} s   {n_tok / c:10,.0f} tokens/s   ratio {c / b:.3f}: hooks and copies, no store")
    if "write" in med:
        # The CPU floor: ingest does the forward pass, the capture's copies and the write path's
        # work on the same cores; however well they overlap, its wall time is at least their
        # CPU time over the cores, so its ratio is at least that over the bare forward's wall.
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        copies = max(0.0, med["c_cap"] - med["c_bare"])
        need = med["c_bare"] + copies + med["c_write"]
        out.update(cpu_floor=need / cores / b)
        print(f"CPU floor      bare {med['c_bare']:.2f} s + capture copies {copies:.2f} s "
              f"+ write path {med['c_write']:.2f} s of CPU on {cores} cores: ingest / bare >= {need / cores / b:.3f} "
              f"however the work overlaps (medians)")
        w, d = med["write"], med["disk"]
        out.update(write_s=w, disk=d, write_fraction=payload / w / d)
        print(f"write path     {w:8.2f} s   {n_tok / w:10,.0f} tokens/s   {payload / w / 2**20:,.0f} MiB/s "
              f"of activations; disk {d / 2**20:,.0f} MiB/s: {payload / w / d:.3f} of the disk's bandwidth (median of "
              f"{len(r['write'])}; goal >= 0.8)")
        a = med["write_app"]
        out.update(write_appends_fraction=payload / a / d)
        print(f"  appends      {a:8.2f} s   {payload / a / 2**20:,.0f} MiB/s: {payload / a / d:.3f} of the disk, without "
              f"declaring the arrays and closing the store ({w - a:.2f} s, once per store)")
        if "long" in med:
            ln, nl = med["long"], args.long * payload
            out.update(long_fraction=nl / ln / d)
            print(f"  long store   {ln:8.2f} s   {nl / ln / 2**20:,.0f} MiB/s: {nl / ln / d:.3f} of the disk; the same batches "
                  f"{args.long}x into one store ({nl / 2**30:.1f} GiB, {med['c_long']:.2f} s CPU), as a long ingest writes")
        print(f"  disk         {med['disk_buf'] / 2**20:,.0f} MiB/s through the page cache, "
              f"{med['disk_dir'] / 2**20:,.0f} MiB/s direct (0: refused); the faster is the disk's bandwidth above")
        if "write_dir" in med:
            wb = med["write_dir"]
            out.update(write_direct_s=wb, write_direct_fraction=payload / wb / d)
            print(f"  direct I/O   {wb:8.2f} s   {n_tok / wb:10,.0f} tokens/s   {payload / wb / 2**20:,.0f} MiB/s: "
                  f"{payload / wb / d:.3f} of the disk (ACTSTORE_DIRECT_IO=1; {med['c_write_dir']:.2f} s CPU against "
                  f"{med['c_write']:.2f} s)")
    del keep, model
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="smollm2-135m")
    ap.add_argument("--model", default=None, help="a model directory or hub name to load with from_pretrained "
                    "instead of a random preset")
    ap.add_argument("--gguf-file", default=None, help="with --model DIR: the GGUF file in it")
    ap.add_argument("--dtype", default="float32,bfloat16", help="comma-separated model dtypes, one section each")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=3_000, help="tokens to capture (records of 64-448)")
    ap.add_argument("--token-budget", type=int, default=4096, help="padded tokens per forward batch")
    ap.add_argument("--buffer-mb", type=int, default=768)
    ap.add_argument("--repeat", type=int, default=3, help="alternating rounds; medians are printed")
    ap.add_argument("--write-rounds", type=int, default=None,
                    help="rounds that also time the write path alone and the disk (default: all; 0: none)")
    ap.add_argument("--long", type=int, default=4, help="the write path again into one store of this many copies "
                    "of the batches, each write round (0: skip)")
    ap.add_argument("--no-direct", dest="direct", action="store_false",
                    help="skip the sides with direct I/O on (ACTSTORE_DIRECT_IO=1)")
    ap.add_argument("--no-page-cache", dest="page_cache", action="store_false",
                    help="skip the side with ACTSTORE_DIRECT_IO=0 (the split schedule without deferred direct "
                    "writes; the same as the default where the schedule is not split)")
    ap.add_argument("--no-raw", dest="raw", action="store_false",
                    help="skip the side with the bare forward and a plain writer of the same bytes beside it")
    ap.add_argument("--no-alt", dest="alt", action="store_false",
                    help="skip the side with the other writer schedule (split or overlapped)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (set explicitly: torch's default "
                    "oversubscribes a shared machine)")
    ap.add_argument("--dir", default=None, help="where to write the stores (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.write_rounds is None:
        args.write_rounds = args.repeat

    import torch

    torch.set_num_threads(args.threads)
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.dir))
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    results = []
    try:
        for dtype in [d.strip() for d in args.dtype.split(",") if d.strip()]:
            results.append(run_dtype(args, dtype, base))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for res in results:
        extra = (f", write path {res['write_fraction']:.3f} of the disk" if "write_fraction" in res else "")
        print(f"{res['dtype']:>9}: ingest / bare forward {res['ratio']:.3f}{extra}")
    return results


if __name__ == "__main__":
    main()

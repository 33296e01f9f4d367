"""Capture-stage wall time against bare forward passes over the same batches.

    python benchmarks/bench_ingest.py                      # hidden 512, 8 layers, bf16, CPU
    python benchmarks/bench_ingest.py --preset qwen2.5-7b --device cuda --tokens 400000   # a GPU box

A randomly initialised model (no download). Both sides run the same forward batches, planned once
by ``ingest.packing`` from the same records:

* bare: the decoder stack only (``model.model``: blocks and final norm, no unembedding: the
  capture stops after the deepest stored block, so the logits would be work only one side does);
* ingest: ``ingest.stage_capture.capture_records`` into a fresh store, all layers, both sites,
  per-token arrays and both pools, until the store is closed (everything durable and published).

Also measured in the same run: the disk's sequential write bandwidth (4 MiB writes then fsync, in
the store's directory), and the rate at which the ingest wrote activation bytes relative to it.
Goal (issue 3): ingest / bare <= 1.15 on a 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PRESETS = {
    # name: (family, hidden, intermediate, layers, heads, kv_heads, vocab)
    "small": ("llama", 512, 1408, 8, 8, 8, 32000),
    # Qwen2.5-7B-Instruct's shape (config.json of the hub checkpoint), randomly initialised.
    "qwen2.5-7b": ("qwen2", 3584, 18944, 28, 28, 4, 152064),
}


def build_model(preset: str, dtype: str, device: str):
    import torch
    import transformers as tf

    family, hidden, inter, layers, heads, kv, vocab = PRESETS[preset]
    cls = tf.LlamaConfig if family == "llama" else tf.Qwen2Config
    cfg = cls(vocab_size=vocab, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
              num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=4096)
    torch.manual_seed(0)
    with torch.device(device):
        model = tf.AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, dtype))
    return model.eval()


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


def bare(model, records, batches, pad: int = 0) -> float:
    import torch

    from ingest.tokenize import collate

    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        for sb in batches:
            for fb in sb.forward:
                ids, mask, _ = collate([records[i].tokens for i in fb], pad, side="left")
                m = torch.from_numpy(mask)
                pos = (m.cumsum(1) - 1).clamp(min=0)
                model.model(input_ids=torch.from_numpy(ids).to(device), attention_mask=m.to(device),
                            position_ids=pos.to(device), use_cache=False)
    sync()
    return time.perf_counter() - t0


class _Tok:
    pad_token_id = 0


def ingest(model, records, arrays, token_budget: int, buffer_mb: int, root: Path) -> tuple[float, int]:
    import actstore
    from ingest.stage_capture import capture_records

    st = actstore.open(root, read_only=False, create=True)
    st.set_model(actstore.ModelInfo("bench", arrays.dtype, model.config.num_hidden_layers, arrays.d_model,
                                    arrays.d_mlp))
    t0 = time.perf_counter()
    capture_records(st, model, _Tok(), records, arrays, token_budget=token_budget,
                    batch_bytes=buffer_mb * (1 << 20) // 3, run_id=None, quiet=True)
    st.close()
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in (root / "arrays").rglob("*") if f.is_file())
    return seconds, size


def disk_write_bandwidth(root: Path, n_bytes: int) -> float:
    """Bytes/s of sequential 4 MiB writes followed by one fsync (what a durable append costs)."""
    block = np.random.default_rng(0).integers(0, 255, size=4 << 20, dtype=np.uint8).tobytes()
    path = root / "disk-probe.bin"
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        written = 0
        while written < n_bytes:
            written += os.write(fd, block)
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return written / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tokens", type=int, default=4_000, help="tokens to capture (records of 64-448)")
    ap.add_argument("--token-budget", type=int, default=4096, help="padded tokens per forward batch")
    ap.add_argument("--buffer-mb", type=int, default=768)
    ap.add_argument("--repeat", type=int, default=2, help="alternating bare/ingest rounds; best of each")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--dir", default=None, help="where to write the stores (default: a temp dir)")
    args = ap.parse_args()

    import torch

    from ingest.packing import plan
    from ingest.stage_capture import ArrayPlan

    model = build_model(args.preset, args.dtype, args.device)
    cfg = model.config
    arrays = ArrayPlan(tuple(range(cfg.num_hidden_layers)), ("resid_post", "mlp_act"), True,
                       ("mean_response", "last_prompt"), args.dtype, cfg.hidden_size, cfg.intermediate_size)
    records = make_records(args.tokens, cfg.vocab_size)
    n_tok = sum(r.tokens.input_ids.shape[0] for r in records)
    lengths = np.array([r.tokens.input_ids.shape[0] for r in records])
    batches = plan(lengths, [r.response_id for r in records], args.token_budget, arrays.row_bytes(),
                   arrays.record_bytes(), args.buffer_mb * (1 << 20) // 3)
    n_fwd = sum(len(sb.forward) for sb in batches)
    print(f"model {args.preset} {args.dtype} on {args.device} ({torch.get_num_threads()} threads): "
          f"{cfg.num_hidden_layers} layers, d_model {cfg.hidden_size}, d_mlp {cfg.intermediate_size}")
    print(f"records {len(records)}, tokens {n_tok}, forward batches {n_fwd}, store batches {len(batches)}, "
          f"{arrays.row_bytes() / 1024:.1f} KiB per token")

    if args.threads:
        torch.set_num_threads(args.threads)
    base = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.dir))
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    try:
        bare(model, records, [type(batches[0])(batches[0].forward[:1])])  # warm-up: kernels, allocator
        t_bare, t_ing, c_bare, c_ing, size = [], [], [], [], 0
        # Alternate the two sides and keep the best of each: on a shared machine the load of the
        # moment swings wall times more than the difference being measured.
        for k in range(args.repeat):
            c0 = time.process_time()
            t_bare.append(bare(model, records, batches))
            c_bare.append(time.process_time() - c0)
            c0 = time.process_time()
            secs, size = ingest(model, records, arrays, args.token_budget, args.buffer_mb, base / f"store{k}")
            c_ing.append(time.process_time() - c0)
            t_ing.append(secs)
            print(f"  round {k}: bare {t_bare[-1]:.2f} s ({c_bare[-1]:.2f} s CPU), "
                  f"ingest {t_ing[-1]:.2f} s ({c_ing[-1]:.2f} s CPU)", flush=True)
            shutil.rmtree(base / f"store{k}")
        disk = disk_write_bandwidth(base, max(size, 256 << 20))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    b, i = min(t_bare), min(t_ing)
    rate = size / i
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"bare forward   {b:8.2f} s   {n_tok / b:10,.0f} tokens/s")
    print(f"ingest         {i:8.2f} s   {n_tok / i:10,.0f} tokens/s   ratio {i / b:.3f} (goal <= 1.15); "
          f"CPU-time ratio {min(c_ing) / min(c_bare):.3f}")
    print(f"wrote {size / 2**20:,.0f} MiB at {rate / 2**20:,.0f} MiB/s; disk sequential write "
          f"{disk / 2**20:,.0f} MiB/s; ingest at {rate / disk:.3f} of the disk's bandwidth")


if __name__ == "__main__":
    main()

"""Activation capture: one forward pass per batch, hooks on the model's real modules.

Sites (see ``actstore.site``):

* ``resid_post`` of layer l: what block l returns, read by a forward hook on the block. It is
  Hugging Face's ``hidden_states[l + 1]`` for every block but the last; HF's last entry has the final
  norm applied, ours does not (invariant 4 of DESIGN.md).
* ``mlp_act`` of layer l: the input of the MLP down projection (width d_mlp), read by a forward
  pre-hook on the module the adapter names (``mlp.down_proj``, GPT-2's ``mlp.c_proj``).

Hooks only read: they return ``None``, so the forward pass is the model's own, bit for bit. Once the
deepest asked-for block has run, its hook raises a private exception that ends the forward pass, so
later blocks and the unembedding (``[tokens, vocab]`` logits, often the biggest matmul) are skipped.

Packing: only real tokens are kept, record by record in batch order, each record's tokens in position
order: rows ``offsets[b]:offsets[b+1]`` of every per-token array belong to record ``b``. Left and right
padding are both accepted (each record's real tokens must be contiguous); position ids are derived
from the mask, so a record gets positions 0..len-1 whatever its padding.

Determinism: per-token values are exactly what the model computed for this batch. The same record in
a batch of another shape (other records, other padding) can differ in the last bits, because matmul
and attention kernels pick different blockings and reduction orders for different shapes; we promise
``allclose``, not bit equality, across batch compositions.

Pools per record:

* ``mean_response``: mean over the record's response tokens (positions ``>= prompt_len``), summed
  in float32 and divided in float32, and kept in **float32** whatever the model's dtype: a
  difference in means subtracts two close means, and rounding each to bf16 (8 bits of mantissa)
  would lose most of the difference. A record with no response tokens gets NaN.
* ``last_prompt``: the token at position ``prompt_len - 1`` (the last token before the response; the
  generation prompt's last token), bit-exact.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from actstore.errors import InputError, ModelError, UsageError
from actstore.site import POOLS, SITE_KINDS, Site, check_pool
from ingest.adapters import Adapter, adapter_for
from ingest.models import dtype_name

# How each torch dtype is exposed to NumPy. NumPy has no bfloat16: its raw 16 bits go out as uint16
# and the batch's ``dtype`` says how to read them (see :func:`decode`).
_STORAGE: dict[torch.dtype, np.dtype] = {
    torch.float32: np.dtype(np.float32),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(np.uint16),
}


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a NumPy array without copying; bfloat16 as its raw bits (uint16)."""
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np.uint16)
    if t.dtype not in _STORAGE:
        raise ModelError(f"activations of dtype {t.dtype} are not supported; load the model in "
                         "float32, bfloat16 or float16")
    return t.numpy()


def decode(a: np.ndarray, dtype: str) -> np.ndarray:
    """Stored array + logical dtype -> float32 values (exact: every bf16/fp16 value is a float32)."""
    if dtype == "bfloat16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32)


#: Logical dtype of every ``mean_response`` array, whatever the model's dtype.
MEAN_DTYPE = "float32"


class _StopForward(Exception):
    """Raised by the hook of the deepest needed block to skip the rest of the model."""


@dataclass(frozen=True, eq=False)
class CapturedBatch:
    """The activations of one batch, on the host.

    dtype: logical dtype of the per-token and ``last_prompt`` arrays ("float32", "float16",
        "bfloat16"); bfloat16 arrays hold the raw bits as uint16 (see :func:`decode`).
        ``mean_response`` arrays are always float32 (:data:`MEAN_DTYPE`).
    token_ids: ``int32[n_tokens]`` the packed real tokens.
    lengths: ``int64[B]`` real tokens per record.
    offsets: ``int64[B + 1]`` record b's rows are ``offsets[b]:offsets[b + 1]``.
    prompt_lens: ``int64[B]``; n_response: ``int64[B]`` = lengths - prompt_lens.
    tokens: per site, ``[n_tokens, width]`` (pool "token").
    mean_response, last_prompt: per site, ``[B, width]``.

    The arrays alias the :class:`Capturer`'s reusable host buffers and are overwritten by its next
    ``capture``: write them out first, or keep :meth:`copy`.
    """

    dtype: str
    token_ids: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    prompt_lens: np.ndarray
    n_response: np.ndarray
    tokens: Mapping[Site, np.ndarray] = field(default_factory=dict)
    mean_response: Mapping[Site, np.ndarray] = field(default_factory=dict)
    last_prompt: Mapping[Site, np.ndarray] = field(default_factory=dict)

    @property
    def n_records(self) -> int:
        return int(self.lengths.shape[0])

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])

    def get(self, site: Site, pool: str) -> np.ndarray:
        """The array for ``(site, pool)``, pool in ``actstore.site.POOLS``."""
        arrays = {"token": self.tokens, "mean_response": self.mean_response,
                  "last_prompt": self.last_prompt}[check_pool(pool)]
        if site not in arrays:
            raise UsageError(f"{site} / {pool} was not captured; captured: "
                             f"{', '.join(str(s) for s in arrays) or 'nothing for this pool'}")
        return arrays[site]

    def record(self, site: Site, b: int) -> np.ndarray:
        """``[lengths[b], width]`` per-token rows of record ``b``."""
        return self.get(site, "token")[self.offsets[b]:self.offsets[b + 1]]

    def copy(self) -> CapturedBatch:
        """A copy that owns its memory (survives the next ``capture``)."""
        def own(d: Mapping[Site, np.ndarray]) -> dict[Site, np.ndarray]:
            return {k: v.copy() for k, v in d.items()}
        return CapturedBatch(self.dtype, self.token_ids.copy(), self.lengths.copy(), self.offsets.copy(),
                             self.prompt_lens.copy(), self.n_response.copy(), own(self.tokens),
                             own(self.mean_response), own(self.last_prompt))


@dataclass(frozen=True, eq=False)
class _Batch:
    """Per-batch index tensors the hooks need, on the model's device."""

    batch: int
    seq: int
    real: torch.Tensor        # bool[B, T] real tokens
    response: torch.Tensor    # bool[B, T] response tokens
    n_response: torch.Tensor  # float32[B]
    flat_real: torch.Tensor   # int64[n_tokens] indexes of real tokens in the flattened [B * T]
    flat_last: torch.Tensor   # int64[B] index of each record's last prompt token in [B * T]
    n_tokens: int
    non_blocking: bool
    into: Mapping[tuple[Site, str], torch.Tensor]
    resp_spans: tuple[tuple[int, int], ...] = ()  # record b's response rows in the packed [n_tokens] order


class Capturer:
    """Captures ``sites`` x ``layers`` of ``model`` in the ``pools`` asked for.

    Use as a context manager to keep the hooks installed across batches::

        with Capturer(model, adapter, layers=[0, 5], sites=["resid_post", "mlp_act"]) as cap:
            for ids, mask, plens in batches:
                out = cap.capture(ids, mask, plens)

    ``capture`` outside a ``with`` installs and removes the hooks around that one call.
    """

    def __init__(self, model: nn.Module, adapter: Adapter | None, layers: Sequence[int],
                 sites: Sequence[str], pools: Sequence[str] = POOLS) -> None:
        self.model = model
        self.adapter = adapter if adapter is not None else adapter_for(model)
        n_blocks = len(self.adapter.blocks_of(model))
        # A bare string would iterate as characters: accept one site or pool name as well.
        sites = [sites] if isinstance(sites, str) else sites
        pools = [pools] if isinstance(pools, str) else pools
        try:
            layers = sorted({int(x) for x in layers})
        except (TypeError, ValueError):
            raise UsageError(f"bad layers {layers!r}; pass a list of layer numbers") from None
        if not layers:
            raise UsageError("no layers to capture; pass at least one layer")
        if layers[0] < 0 or layers[-1] >= n_blocks:
            bad = layers[0] if layers[0] < 0 else layers[-1]
            raise UsageError(f"layer {bad} out of range; this model has layers 0-{n_blocks - 1}")
        kinds = list(dict.fromkeys(sites))
        if not kinds:
            raise UsageError(f"no sites to capture; use some of {', '.join(SITE_KINDS)}")
        self.layers: tuple[int, ...] = tuple(layers)
        self.sites: tuple[Site, ...] = tuple(sorted(Site(k, layer) for k in kinds for layer in layers))
        self.pools: tuple[str, ...] = tuple(dict.fromkeys(check_pool(p) for p in pools))
        if not self.pools:
            raise UsageError(f"no pools to capture; use some of {', '.join(POOLS)}")
        self._handles: list[Any] = []
        self._host: dict[tuple[Site, str], torch.Tensor] = {}
        self._batch: _Batch | None = None
        self._got: dict[str, dict[Site, torch.Tensor]] = {}
        self._dtype: torch.dtype | None = None
        self._devices: set[torch.device] = set()

    # -- hooks ----------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _install(self) -> None:
        if self._handles:
            return
        kinds = {s.kind for s in self.sites}
        deepest = self.layers[-1]
        try:
            for layer in self.layers:
                if "mlp_act" in kinds:
                    mod = self.adapter.down_proj_of(self.model, layer)
                    self._handles.append(mod.register_forward_pre_hook(self._mlp_hook(layer)))
                block = self.adapter.block(self.model, layer)
                self._handles.append(block.register_forward_hook(
                    self._block_hook(layer, "resid_post" in kinds, stop=layer == deepest)))
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Remove every hook this capturer installed."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    @contextmanager
    def _hooks(self) -> Iterator[None]:
        if self._handles:
            yield
            return
        self._install()
        try:
            yield
        finally:
            self.remove()

    def _block_hook(self, layer: int, resid: bool, stop: bool) -> Any:
        site = Site("resid_post", layer)

        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if resid:
                # transformers 5 blocks return a tensor; remote-code and older blocks a tuple.
                self._take(site, output[0] if isinstance(output, tuple) else output)
            if stop and self._batch is not None:  # never cut short a forward that is not ours
                raise _StopForward
        return hook

    def _mlp_hook(self, layer: int) -> Any:
        site = Site("mlp_act", layer)

        def hook(module: nn.Module, args: Any) -> None:
            self._take(site, args[0])
        return hook

    def _take(self, site: Site, x: torch.Tensor) -> None:
        """Pack and pool ``x: [B, T, width]`` (model dtype, model device) into host buffers."""
        b = self._batch
        if b is None:  # the model ran outside capture() with our hooks installed
            return
        if x.shape[:2] != (b.batch, b.seq):
            raise ModelError(f"{site} has shape {tuple(x.shape)}; expected [{b.batch}, {b.seq}, width]")
        if self._dtype is None:
            self._dtype = x.dtype
        elif x.dtype != self._dtype:
            raise ModelError(f"{site} is {x.dtype} but other sites are {self._dtype}; mixed-precision "
                             "models are not supported: load the model in one dtype")
        # .to() is a no-op on the input device; it matters when device_map spreads blocks over GPUs.
        dev = x.device
        self._devices.add(dev)
        flat = x.reshape(b.batch * b.seq, x.shape[-1])
        if "token" in self.pools:
            # One gather of the real tokens, record by record (row-major over [B, T]); on the CPU
            # straight into the caller's buffer when it gave one.
            self._gather(site, "token", flat, b.flat_real.to(dev), b)
        if "last_prompt" in self.pools:
            self._gather(site, "last_prompt", flat, b.flat_last.to(dev), b)
        if "mean_response" in self.pools:
            packed = self._got.get("token", {}).get(site)  # gathered above, when tokens are captured
            if packed is not None and dev.type == "cpu":
                self._mean_from_packed(site, packed, b)
                return
            # where (not multiply): padding positions may hold NaN (fully masked attention rows).
            picked = torch.where(b.response.to(dev)[:, :, None], x, x.new_zeros(()))
            mean = picked.sum(dim=1, dtype=torch.float32).div_(b.n_response.to(dev)[:, None])
            self._to_host(site, "mean_response", mean, b)  # float32: see the module docstring

    def _mean_from_packed(self, site: Site, packed: torch.Tensor, b: _Batch) -> None:
        """The float32 mean of each record's response rows, summed from the packed token rows just
        gathered (each record's response is one contiguous run there): one read of the response
        rows, no padded [B, T, width] temporary (on the CPU that masked copy and its allocation cost
        more than the gather itself). A record's mean then depends on its own rows only, not on the
        padding of the batch it shared. No response rows: 0 / 0 = NaN, as on the device path."""
        dst = b.into.get((site, "mean_response"))
        if dst is None or dst.dtype != torch.float32:
            out = torch.empty((b.batch, packed.shape[1]), dtype=torch.float32)
        else:
            out = dst
        for i, (lo, hi) in enumerate(b.resp_spans):
            torch.sum(packed[lo:hi], dim=0, dtype=torch.float32, out=out[i])
        out.div_(b.n_response[:, None])
        if out is dst:
            self._got.setdefault("mean_response", {})[site] = dst
        else:
            self._to_host(site, "mean_response", out, b)

    def _gather(self, site: Site, pool: str, flat: torch.Tensor, idx: torch.Tensor, b: _Batch) -> None:
        dst = b.into.get((site, pool))
        if dst is not None and flat.device.type == "cpu" and dst.dtype == flat.dtype:
            torch.index_select(flat, 0, idx, out=dst)
            self._got.setdefault(pool, {})[site] = dst
        else:
            self._to_host(site, pool, flat.index_select(0, idx), b)

    def _to_host(self, site: Site, pool: str, src: torch.Tensor, b: _Batch) -> None:
        rows, width = src.shape
        dst = b.into.get((site, pool))
        if dst is not None:  # the caller's buffer (pinned on a GPU machine for an async copy)
            dst.copy_(src, non_blocking=b.non_blocking and dst.is_pinned())
            self._got.setdefault(pool, {})[site] = dst
            return
        buf = self._host.get((site, pool))
        if buf is None or buf.shape[0] < rows or buf.shape[1] != width or buf.dtype != src.dtype:
            # Grow by half again so a slowly rising token count does not reallocate every batch.
            cap = max(rows, int(buf.shape[0] * 1.5) if buf is not None else rows)
            buf = torch.empty((cap, width), dtype=src.dtype, pin_memory=b.non_blocking)
            self._host[(site, pool)] = buf
        view = buf[:rows]
        view.copy_(src, non_blocking=b.non_blocking)
        self._got.setdefault(pool, {})[site] = view

    # -- the pass -------------------------------------------------------------------------

    def site_widths(self) -> dict[Site, int]:
        """Width of each captured site: d_model for resid_post, d_mlp for mlp_act."""
        d_model = self.adapter.unembed_weight(self.model).shape[1]
        return {s: (d_model if s.kind == "resid_post" else
                    self.adapter.down_proj_weight(self.model, s.layer).shape[1]) for s in self.sites}

    def capture(self, input_ids: torch.Tensor | np.ndarray, attention_mask: torch.Tensor | np.ndarray,
                prompt_lens: Sequence[int] | np.ndarray | torch.Tensor, *,
                into: Mapping[tuple[Site, str], torch.Tensor] | None = None) -> CapturedBatch:
        """One forward pass over a padded batch.

        input_ids: ``int[B, T]``; attention_mask: ``{0,1}[B, T]``, each row's ones contiguous (left or
        right padding); prompt_lens: ``int[B]``, the number of real prompt tokens of each record,
        ``1 <= prompt_lens[b] <= number of real tokens of b``.
        into: optional host tensors to fill instead of the capturer's own buffers, keyed by
            ``(site, pool)``: ``[n_tokens, width]`` for "token", ``[B, width]`` for the pools, in the
            dtype the array has (float32 for mean_response). Saves a copy: an ingest passes slices
            of the store batch it is filling, so each activation is copied once on the host.
        """
        if self.model.training:
            raise UsageError("the model is in training mode (dropout would change activations); "
                             "call model.eval() before capture")
        ids, real, plens = _check_batch(input_ids, attention_mask, prompt_lens)
        batch, seq = real.shape
        lengths = real.sum(1)
        mask = real.to(torch.long)

        offsets = torch.zeros(batch + 1, dtype=torch.int64)
        torch.cumsum(lengths, 0, out=offsets[1:])
        pos = mask.cumsum(1) - 1  # position within the record (as generate() numbers it)
        device = _input_device(self.model)
        non_blocking = device.type == "cuda"
        self._batch = _Batch(
            batch=batch, seq=seq,
            real=real.to(device),
            response=(real & (pos >= plens[:, None])).to(device),
            n_response=(lengths - plens).to(device, torch.float32),
            flat_real=real.reshape(-1).nonzero().squeeze(1).to(device),
            flat_last=(torch.arange(batch) * seq + real.to(torch.int8).argmax(1) + plens - 1).to(device),
            n_tokens=int(offsets[-1]),
            non_blocking=non_blocking,
            into=into or {},
            resp_spans=tuple((int(o) + int(p), int(e)) for o, p, e in zip(offsets[:-1], plens, offsets[1:], strict=True)),
        )
        self._got = {}
        self._dtype = None
        self._devices = set()
        try:
            with torch.no_grad(), self._hooks():
                try:
                    self.model(input_ids=ids.to(device, torch.long), attention_mask=mask.to(device),
                               position_ids=pos.clamp(min=0).to(device), use_cache=False)
                except _StopForward:
                    pass
            for dev in self._devices:  # the non_blocking device->host copies must land first
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
        finally:
            self._batch = None
        missing = [f"{s}/{p}" for p in self.pools for s in self.sites if s not in self._got.get(p, {})]
        if missing:
            raise ModelError(f"the forward pass never reached {missing[0]}; the adapter's module paths "
                             "do not match what this model runs")
        assert self._dtype is not None
        got = {p: {s: to_numpy(self._got[p][s]) for s in self.sites} for p in self.pools}
        return CapturedBatch(
            dtype=dtype_name(self._dtype),
            token_ids=ids.to("cpu")[real].to(torch.int32).numpy(),
            lengths=lengths.numpy(), offsets=offsets.numpy(), prompt_lens=plens.numpy(),
            n_response=(lengths - plens).numpy(),
            tokens=got.get("token", {}), mean_response=got.get("mean_response", {}),
            last_prompt=got.get("last_prompt", {}),
        )


def _input_device(model: nn.Module) -> torch.device:
    dev = getattr(model, "device", None)
    if isinstance(dev, torch.device):
        return dev
    return next(model.parameters()).device


def _check_batch(input_ids: Any, attention_mask: Any,
                 prompt_lens: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a padded batch -> (ids int[B, T], real bool[B, T] on the CPU, prompt_lens int64[B])."""
    ids = torch.as_tensor(input_ids)
    mask = torch.as_tensor(attention_mask).to("cpu")
    plens = (prompt_lens.to("cpu", torch.int64) if isinstance(prompt_lens, torch.Tensor)
             else torch.as_tensor(np.asarray(prompt_lens, dtype=np.int64))).reshape(-1)
    if ids.ndim != 2 or mask.shape != ids.shape or plens.shape[0] != ids.shape[0] or ids.shape[0] == 0:
        raise InputError(f"input_ids {tuple(ids.shape)}, attention_mask {tuple(mask.shape)} and "
                         f"prompt_lens {tuple(plens.shape)} must be [B, T], [B, T] and [B] with B >= 1")
    if ids.is_floating_point():
        raise InputError(f"input_ids must be integers, got {ids.dtype}")
    real = mask.to(torch.bool)
    if not torch.equal(real.to(mask.dtype), mask):
        raise InputError("attention_mask must hold only 0 and 1")
    lengths = real.sum(1)
    if bool((lengths == 0).any()):
        raise InputError(f"record {int((lengths == 0).nonzero()[0])} of the batch has no real tokens")
    # Real tokens must be one run per row: first..last real index spans exactly `lengths` tokens.
    first = real.to(torch.int8).argmax(1)
    last = real.shape[1] - 1 - real.flip(1).to(torch.int8).argmax(1)
    gapped = (last - first + 1) != lengths
    if bool(gapped.any()):
        raise InputError(f"record {int(gapped.nonzero()[0])} has padding between real tokens; "
                         "pad on the left or the right only")
    bad = (plens < 1) | (plens > lengths)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise InputError(f"prompt_lens[{i}] = {int(plens[i])} but record {i} has {int(lengths[i])} "
                         "real tokens; need 1 <= prompt_len <= tokens")
    return ids, real, plens

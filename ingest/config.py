"""What an ingest does, as one frozen value: :class:`IngestConfig`.

Built from keyword arguments, from a TOML file (:meth:`IngestConfig.from_toml`) or both (CLI flags
override the file). Validation happens in ``__post_init__`` and needs no I/O, no model and no store;
what needs the model's sizes (layer ranges) is checked by :meth:`IngestConfig.check_shapes` against
``ingest.models.model_shapes`` before any weight loads. Every problem is one line, raised as an
``actstore.errors`` type, so the CLI prints ``error: ...`` and nothing has been written.

TOML layout: keys are the field names below, at the top level or inside any of the tables
``[model]``, ``[prompts]``, ``[generate]``, ``[judge]``, ``[capture]``, ``[import]`` (tables only group;
a key means the same wherever it sits)::

    store = "runs/qwen-values"
    [model]
    model = "Qwen/Qwen2.5-7B-Instruct"
    dtype = "bfloat16"
    [prompts]
    languages = ["en", "ko"]
    values = ["power", "benevolence"]
    [capture]
    layers = "10-20"
    sites = ["resid_post"]
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actstore.errors import InputError, UsageError
from actstore.shard import Shard, part_path
from actstore.site import POOLS, SITE_KINDS, parse_layers
from ingest.units import DEFAULT_UNIT
from ingest.values import LANGUAGES, parse_value

#: Weights an ingest can store: ``mlp_down`` [d_model, d_mlp] per stored layer, ``unembed``
#: [vocab, d_model], ``final_norm`` [1, d_model] (the norm's scale as the model holds it).
WEIGHTS: tuple[str, ...] = ("mlp_down", "unembed", "final_norm")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
CODECS: tuple[str, ...] = ("none", "blosc-lz4", "blosc-zstd", "zstd")
OVERLONG: tuple[str, ...] = ("error", "skip", "truncate")
_SECTIONS = ("model", "prompts", "generate", "judge", "capture", "import")
_ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
_LANG_RE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]+)?$")


def _tuple(x: Any) -> tuple | None:
    if x is None:
        return None
    if isinstance(x, str):  # "en,ko" from a flag, or one name
        return tuple(p.strip() for p in x.split(",") if p.strip())
    return tuple(x)


@dataclass(frozen=True)
class IngestConfig:
    """Everything one ingest run needs.

    store: the store directory (created if absent).
    model: hub name or local directory; dtype: auto | float32 | bfloat16 | float16; device: torch device.
    prompts: ``builtin`` | a Value Portrait directory/JSON | a JSONL/JSON/CSV/TSV/Parquet table |
        ``hf:NAME[:SPLIT]``; ``columns``: ``FIELD=COLUMN`` pairs for tables (see ingest.prompts.loaders).
    languages / values: filters (None = all present / all ten); templates_per_value: prompted
        variants per (query, value); include_intrinsic; max_queries: keep the first N query ids.
    intrinsic_system: how intrinsic prompts (and imported Value Portrait queries) are asked: ``default``
        (no system message, as the study did; a chat template with a default system prompt inserts
        it, and ingest says so once) or ``empty`` (an explicit empty system message).
    samples: responses per prompt; intrinsic_samples: responses per intrinsic prompt (default: samples;
        intrinsic answers follow the model's own uneven prior, so rare values need more samples to get
        enough responses that express them); max_new_tokens, temperature (0 = greedy), top_p, seed, batch_size:
        generation.
    judge: ``lexicon`` (the value-world phrase pools) | ``lexicon:FILE.json`` ({value: [phrases]}) |
        ``embed`` | ``embed:MODEL_DIR`` | ``embed:HEAD.npz`` | ``embed:value-portrait`` (sentence-embedding
        judge; the last with the packaged head) | ``hf:PATH[#OPTIONS]`` | ``openai:URL#MODEL``. None (the
        default): ``lexicon`` for the value-world model or the value world's prompts, else
        ``embed:value-portrait`` (``ingest.pipeline.with_judge``): the value world's phrases say nothing
        about another model's answers.
        judge_threshold: score threshold for "expressed" (a number, or ``from-eval``: the one
        ``actstore judge eval`` recorded in the store).
    layers: ``all`` or e.g. ``"0,4,8"``, ``"10-16"``; sites: resid_post, mlp_act; per_token: store
        per-token arrays; pools: mean_response (float32), last_prompt (model dtype).
    weights: subset of :data:`WEIGHTS`; token_budget: padded tokens per forward batch;
        buffer_mb: host memory for captured batches in flight (bounds ingest memory); codec.
    import_path: Value Portrait directory or ``tagged_responses.json`` for ``ingest import``;
        import_threshold: rho at or above which a value counts as expressed; max_tokens / overlong:
        what an import does with a record longer than ``max_tokens`` (default: the model's context),
        see :func:`ingest.importers.fit_to_context`.
    shard: ``"I/N"``: this process is worker I of N (from 0); it takes its share of the work and
        writes the part store :attr:`target` (``STORE.parts/part-IIII-of-NNNN``), which
        ``actstore merge STORE.parts --out STORE`` joins (None: one process does everything; the CLI
        fills it from torchrun's or a SLURM array's environment when no ``--shard`` is given).
    threads: CPU threads for torch (``ingest.threads``; None: the usable cores, at most 8, or
        ``OMP_NUM_THREADS``); results do not depend on it.
    shard_unit: responses per unit of work (``ingest.units``): shards take whole units, and every
        stage, sharded or not, batches within units, so N parts merge into the store one process writes.
    """

    store: str
    model: str | None = None
    dtype: str = "auto"
    device: str = "cpu"
    trust_remote_code: bool = False
    # prompts
    prompts: str = "builtin"
    columns: tuple[str, ...] = ()
    languages: tuple[str, ...] | None = None
    values: tuple[str, ...] | None = None
    templates_per_value: int = 1
    include_intrinsic: bool = True
    intrinsic_system: str = "default"
    max_queries: int | None = None
    prompt_seed: int = 0
    # generation
    samples: int = 1
    intrinsic_samples: int | None = None
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int = 0
    batch_size: int = 16
    # judging
    judge: str | None = None
    judge_threshold: str | None = None  # a number, or "from-eval" (the store's latest judge eval)
    # capture
    layers: str = "all"
    sites: tuple[str, ...] = SITE_KINDS
    per_token: bool = True
    pools: tuple[str, ...] = ("mean_response", "last_prompt")
    weights: tuple[str, ...] = WEIGHTS
    token_budget: int = 8192
    buffer_mb: int = 1024
    codec: str = "none"
    # import
    import_path: str | None = None
    import_threshold: float = 0.3
    max_tokens: int | None = None  # import: longest record (prompt + response); None = the model's context
    overlong: str = "error"  # import: a longer record is an error | skipped | truncated (ingest.importers)
    # sharding
    shard: str | None = None
    shard_unit: int = DEFAULT_UNIT
    threads: int | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        def set_(name: str, value: Any) -> None:  # frozen: normalise each field once, here
            object.__setattr__(self, name, value)

        if not self.store or not str(self.store).strip():
            raise UsageError("no store path; pass STORE (a directory, created if absent)")
        set_("store", str(self.store))
        if self.dtype not in DTYPES:
            raise UsageError(f"bad dtype {self.dtype!r}; use one of {', '.join(DTYPES)}")
        for name in ("columns", "languages", "values", "sites", "pools", "weights"):
            set_(name, _tuple(getattr(self, name)))
        set_("columns", self.columns or ())
        if self.values is not None:
            if not self.values:
                raise InputError("values is empty; name at least one value, or leave it out for all ten")
            slugs = tuple(parse_value(v) for v in self.values)
            if len(set(slugs)) != len(slugs):
                raise InputError(f"a value is listed twice in {', '.join(self.values)}; list each once")
            set_("values", slugs)
        if self.languages is not None:
            if not self.languages:
                raise InputError("languages is empty; name at least one, or leave it out for all")
            for lang in self.languages:
                if self.prompts == "builtin" and lang not in LANGUAGES:
                    raise InputError(f"unknown language {lang!r} for the built-in prompts; use one of "
                                     f"{', '.join(LANGUAGES)}")
                if not _LANG_RE.match(lang):
                    raise InputError(f"bad language code {lang!r}; use an ISO 639-1 code such as en, zh, ko")
        for kind in self.sites or ():
            if kind not in SITE_KINDS:
                raise UsageError(f"unknown site {kind!r}; use one of {', '.join(SITE_KINDS)}")
        for pool in self.pools or ():
            if pool not in POOLS or pool == "token":
                raise UsageError(f"unknown pool {pool!r}; use mean_response and/or last_prompt "
                                 "(per-token arrays are --per-token)")
        for w in self.weights or ():
            if w not in WEIGHTS:
                raise UsageError(f"unknown weight {w!r}; use some of {', '.join(WEIGHTS)}")
        if not self.sites and (self.per_token or self.pools):
            raise UsageError(f"no sites to capture; use some of {', '.join(SITE_KINDS)}")
        if self.layers.strip() != "all":
            parse_layers(self.layers)  # syntax now; the range once the model's shapes are known
        if self.shard is not None:
            set_("shard", str(self.shard if isinstance(self.shard, Shard) else Shard.parse(str(self.shard))))
        for name, low in (("templates_per_value", 0), ("samples", 1), ("max_new_tokens", 1),
                          ("batch_size", 1), ("token_budget", 16), ("buffer_mb", 1), ("shard_unit", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UsageError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.intrinsic_samples is not None and (not isinstance(self.intrinsic_samples, int)
                                                   or isinstance(self.intrinsic_samples, bool)
                                                   or self.intrinsic_samples < 1):
            raise UsageError(f"intrinsic_samples must be an integer >= 1, got {self.intrinsic_samples!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or isinstance(self.threads, bool)
                                         or self.threads < 1):
            raise UsageError(f"threads must be an integer >= 1, got {self.threads!r}; or leave it out for the default")
        if self.max_queries is not None and (not isinstance(self.max_queries, int) or self.max_queries < 1):
            raise UsageError(f"max_queries must be an integer >= 1, got {self.max_queries!r}")
        if not self.include_intrinsic and self.templates_per_value == 0:
            raise InputError("include_intrinsic is off and templates_per_value is 0: the prompt set is empty")
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 0):
            raise UsageError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise UsageError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.overlong not in OVERLONG:
            raise UsageError(f"bad overlong rule {self.overlong!r}; use one of {', '.join(OVERLONG)}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int)
                                            or self.max_tokens < 2):
            raise UsageError(f"max_tokens must be an integer >= 2, got {self.max_tokens!r}")
        if self.codec not in CODECS:
            raise UsageError(f"unknown codec {self.codec!r}; use one of {', '.join(CODECS)}")
        if self.judge is not None:
            parse_judge(self.judge)
        if self.intrinsic_system not in ("default", "empty"):
            raise UsageError(f"bad intrinsic_system {self.intrinsic_system!r}; use default (no system message: "
                             "the chat template's default system prompt, if any) or empty (an empty system message)")
        if self.judge_threshold is not None and str(self.judge_threshold) != "from-eval":
            try:
                float(self.judge_threshold)
            except ValueError:
                raise UsageError(f"bad threshold {self.judge_threshold!r}; pass a number or from-eval") from None
        if self.model is not None and not str(self.model).strip():
            raise UsageError("empty --model; pass a hub name or a local model directory")

    # -- derived ---------------------------------------------------------------------------
    @property
    def shard_spec(self) -> Shard | None:
        """:attr:`shard` parsed (None: not sharded)."""
        return Shard.parse(self.shard) if self.shard is not None else None

    @property
    def target(self) -> str:
        """Where this process writes: :attr:`store`, or its part store when sharded."""
        shard = self.shard_spec
        return self.store if shard is None else str(part_path(self.store, shard))

    def layer_list(self, n_layers: int) -> list[int]:
        """The stored layers for a model with ``n_layers`` blocks (raises if one is out of range)."""
        return parse_layers(self.layers, n_layers)

    def check_shapes(self, shapes: Any) -> list[int]:
        """Check what depends on the model's sizes (``ingest.models.ModelShapes``); -> layers."""
        layers = self.layer_list(shapes.n_layers)
        if not layers:
            raise UsageError(f"no layers selected by {self.layers!r}; this model has layers 0-{shapes.n_layers - 1}")
        return layers

    def model_dtype(self, shapes: Any) -> str:
        return shapes.dtype if self.dtype == "auto" else self.dtype

    def bytes_per_token(self, shapes: Any) -> int:
        """Bytes of per-token activations one stored token costs (0 when per_token is off)."""
        if not self.per_token:
            return 0
        widths = {"resid_post": shapes.d_model, "mlp_act": shapes.d_mlp}
        n = len(self.layer_list(shapes.n_layers))
        return n * sum(widths[k] for k in self.sites) * _ITEMSIZE.get(self.model_dtype(shapes), 4)

    def bytes_per_record(self, shapes: Any) -> int:
        """Bytes of pooled activations per record (mean_response float32, last_prompt model dtype)."""
        widths = {"resid_post": shapes.d_model, "mlp_act": shapes.d_mlp}
        per_layer = sum(widths[k] for k in self.sites)
        n = len(self.layer_list(shapes.n_layers))
        size = {"mean_response": 4, "last_prompt": _ITEMSIZE.get(self.model_dtype(shapes), 4)}
        return n * per_layer * sum(size[p] for p in self.pools)

    def batch_bytes(self) -> int:
        """Target size of one store batch: a third of the buffer, since up to three are alive at once
        (one being filled, one queued, one being written)."""
        return self.buffer_mb * (1 << 20) // 3

    def with_overrides(self, **kw: Any) -> IngestConfig:
        """A copy with the given fields replaced (``None`` values are ignored)."""
        return from_mapping({**self.to_dict(), **{k: v for k, v in kw.items() if v is not None}})

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as recorded in the ``runs`` table."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_toml(cls, path: str | Path, **overrides: Any) -> IngestConfig:
        """Read a TOML file; ``overrides`` (e.g. CLI flags; ``None`` = not given) win over the file."""
        return from_mapping({**read_toml(path), **{k: v for k, v in overrides.items() if v is not None}})


#: TOML keys are the flags' names (``language``, ``max-new-tokens``; ``max_new_tokens`` works too); these
#: flags name a field of another spelling. A list flag also takes a comma string, as on the command line.
FLAG_KEYS = {"column": "columns", "language": "languages", "value": "values", "intrinsic": "include_intrinsic",
             "site": "sites", "pool": "pools", "weight": "weights", "threshold": "import_threshold",
             "path": "import_path", "import": "import_path"}
_LIST_FIELDS = ("languages", "values", "sites", "pools", "weights")


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML config file flattened to ``{field: value}`` (tables only group keys); keys are the flag
    names (see :data:`FLAG_KEYS`)."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{p}: no such config file; check the path") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{p}: not valid TOML ({e}); fix the file") from None
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    out: dict[str, Any] = {}
    for key, value in flat.items():  # `path` is the natural key inside [import]
        name = key.replace("-", "_")
        name = FLAG_KEYS.get(name, name)
        if name in _LIST_FIELDS and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        out[name] = value
    return out


def from_mapping(data: Mapping[str, Any]) -> IngestConfig:
    """An :class:`IngestConfig` from plain keys; an unknown key gets a "did you mean" line."""
    names = [f.name for f in dataclasses.fields(IngestConfig)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(names)}"
            raise UsageError(f"unknown config key {key!r}; {hint}")
    if "store" not in data:
        raise UsageError("no store path; pass STORE (a directory, created if absent)")
    return IngestConfig(**dict(data))


# -- judge specs ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class JudgeSpec:
    """A parsed ``--judge``: kind lexicon | hf | openai, with its target."""

    kind: str
    target: str | None = None
    model: str | None = None
    options: tuple[str, ...] = ()  # hf: generate|logprob, per-value|all, yesno|score


HF_OPTIONS = ("generate", "logprob", "per-value", "all", "yesno", "score")


def parse_judge(spec: str) -> JudgeSpec:
    """``lexicon`` | ``lexicon:FILE.json`` | ``embed`` | ``embed:MODEL_DIR`` | ``embed:HEAD.npz`` | ``embed:NAME`` |
    ``hf:PATH[#OPT,...]`` | ``openai:URL#MODEL`` -> :class:`JudgeSpec` (see ingest.judges)."""
    text = (spec or "").strip()
    kind, _, rest = text.partition(":")
    if kind == "lexicon":
        return JudgeSpec("lexicon", rest or None)
    if kind == "embed":
        return JudgeSpec("embed", rest or None)
    if kind == "hf" and rest:
        path, _, opts = rest.partition("#")
        options = tuple(o.strip() for o in opts.split(",") if o.strip())
        bad = [o for o in options if o not in HF_OPTIONS]
        if bad or not path:
            raise UsageError(f"bad judge {spec!r}; write hf:MODEL_PATH[#OPTIONS] with options from {', '.join(HF_OPTIONS)}")
        return JudgeSpec("hf", path, options=options)
    if kind == "openai" and rest:
        url, hash_, model = rest.partition("#")
        if not hash_ or not model or not url.startswith(("http://", "https://")):
            raise UsageError(f"bad judge {spec!r}; write openai:URL#MODEL, e.g. openai:http://localhost:8000/v1#qwen")
        return JudgeSpec("openai", url, model)
    raise UsageError(f"bad judge {spec!r}; use lexicon, lexicon:PHRASES.json, embed[:MODEL_DIR|HEAD.npz|value-portrait], "
                     "hf:MODEL_PATH[#OPTIONS] or openai:URL#MODEL")

"""SQLAlchemy Core declarations of the catalog, written once here (never reflected).

duckdb-engine cannot reflect tables with SQLAlchemy >= 2.0.45, so code that builds queries uses
these objects with ``store.engine``. The DDL itself lives in ``schema/``; a test checks that the
two agree column for column.

    import sqlalchemy as sa
    from actstore.tables import records_info
    q = sa.select(records_info.c.condition, sa.func.count()).group_by(records_info.c.condition)
    with store.engine.connect() as c:
        print(c.execute(q).all())
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.types import UserDefinedType

metadata = sa.MetaData()


class FloatArray(UserDefinedType):
    """DuckDB's fixed-size ``FLOAT[d]`` (the ``vectors.vec`` column)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "FLOAT[]"


def _t(name: str, *cols: sa.Column) -> sa.Table:
    return sa.Table(name, metadata, *cols)


C, I, B, V, D, BOOL, TS, J = (sa.Column, sa.Integer, sa.BigInteger, sa.String, sa.Float,
                              sa.Boolean, sa.DateTime, sa.JSON)

meta = _t("meta", C("key", V, primary_key=True), C("value", V))
migrations = _t("migrations", C("version", I, primary_key=True), C("name", V), C("applied_at", TS))
models = _t("models", C("model_id", I, primary_key=True), C("name", V), C("revision", V), C("family", V),
            C("dtype", V), C("n_layers", I), C("d_model", I), C("d_mlp", I), C("vocab_size", I),
            C("config", J), C("added_at", TS))
vocab = _t("vocab", C("token_id", I, primary_key=True), C("text", V))
runs = _t("runs", C("run_id", I, primary_key=True), C("kind", V), C("params", J), C("versions", J),
          C("status", V), C("started_at", TS), C("finished_at", TS), C("message", V))
prompts = _t("prompts", C("prompt_id", V, primary_key=True), C("query_id", V), C("condition", V),
             C("target_value", V), C("language", V), C("template_id", V), C("system_text", V),
             C("user_text", V), C("chat_text", V), C("source", V), C("effective_system", V))
responses = _t("responses", C("response_id", V, primary_key=True), C("prompt_id", V), C("sample_idx", I),
               C("text", V), C("gen_params", J), C("seed", B), C("source", V), C("run_id", I))
labels = _t("labels", C("response_id", V, primary_key=True), C("value", V, primary_key=True),
            C("judge_id", V, primary_key=True), C("expressed", BOOL), C("score", D), C("raw", V),
            C("run_id", I))
batches = _t("batches", C("batch_id", I, primary_key=True), C("run_id", I), C("key", V),
             C("record_start", B), C("n_records", B), C("row_start", B), C("n_rows", B),
             C("committed_at", TS))
records = _t("records", C("record_id", B, primary_key=True), C("response_id", V), C("prompt_id", V),
             C("batch_id", I), C("row_start", B), C("n_tokens", I), C("prompt_len", I))
tokens = _t("tokens", C("row", B), C("record_id", B), C("position", I), C("token_id", I), C("role", V))
arrays = _t("arrays", C("name", V, primary_key=True), C("kind", V), C("site", V), C("layer", I), C("pool", V),
            C("n_rows", B), C("width", I), C("dtype", V), C("logical_dtype", V), C("chunk_rows", I),
            C("shard_chunks", I), C("codec", V), C("created_at", TS))
chunk_checksums = _t("chunk_checksums", C("name", V, primary_key=True), C("chunk", B, primary_key=True),
                     C("n_rows", I), C("crc32", B), C("segment_id", I, primary_key=True))
segments = _t("segments", C("segment_id", I, primary_key=True), C("path", V), C("row_start", B),
              C("record_start", B), C("source", V))
neuron_scores = _t("neuron_scores", C("run_id", I), C("value", V), C("layer", I), C("neuron", I),
                   C("score", D), C("rank", I), C("class", V), C("angle_deg", D), C("proj_shared", D),
                   C("proj_unique", D), C("attribution", D), C("method", V))
vectors = _t("vectors", C("vector_id", I, primary_key=True), C("run_id", I), C("name", V), C("value", V),
             C("condition", V), C("component", V), C("site", V), C("layer", I), C("pool", V),
             C("language", V), C("n_pos", I), C("n_neg", I), C("norm", D), C("meta", J),
             C("vec", FloatArray()))

# Views (schema/0002_views.sql)
records_info = _t("records_info", C("record_id", B), C("response_id", V), C("prompt_id", V), C("query_id", V),
                  C("condition", V), C("target_value", V), C("language", V), C("template_id", V),
                  C("source", V), C("sample_idx", I), C("row_start", B), C("n_tokens", I),
                  C("prompt_len", I), C("batch_id", I))
tokens_info = _t("tokens_info", C("row", B), C("record_id", B), C("position", I), C("token_id", I),
                 C("token_text", V), C("role", V), C("prompt_id", V), C("response_id", V), C("query_id", V),
                 C("condition", V), C("target_value", V), C("language", V))
record_labels = _t("record_labels", C("record_id", B), C("response_id", V), C("prompt_id", V),
                   C("condition", V), C("target_value", V), C("language", V), C("value", V),
                   C("expressed", BOOL), C("score", D), C("judge_id", V))

# Steering (schema/0004_steering.sql)
steering_sweeps = _t("steering_sweeps", C("sweep_id", V, primary_key=True), C("run_id", I), C("model", V),
                     C("spec", J), C("status", V), C("created_at", TS), C("finished_at", TS))
steering_settings = _t("steering_settings", C("setting_id", V, primary_key=True), C("sweep_id", V), C("kind", V),
                       C("vector_id", I), C("vector_kind", V), C("value", V), C("neuron_set", V), C("layers", V),
                       C("alpha", D), C("alpha_mode", V), C("scale", D), C("beta", D), C("neuron_mode", V),
                       C("positions", V), C("meta", J))
steering_neuron_sets = _t("steering_neuron_sets", C("set_id", V, primary_key=True), C("query", V),
                          C("layer", I, primary_key=True), C("neuron", I, primary_key=True), C("mean_act", D))
steering_generations = _t("steering_generations", C("generation_id", V, primary_key=True), C("setting_id", V),
                          C("sweep_id", V), C("eval", V), C("item_id", V), C("sample_idx", I), C("system_text", V),
                          C("user_text", V), C("text", V), C("verdict", D), C("created_at", TS))
steering_metrics = _t("steering_metrics", C("setting_id", V, primary_key=True), C("sweep_id", V),
                      C("eval", V, primary_key=True), C("metric", V, primary_key=True), C("value", D), C("n", I))

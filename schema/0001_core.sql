-- actstore format 1: the core catalog.
-- Every table a store needs. The `vectors` table is created when the store's model is set,
-- because its `vec` column is FLOAT[d_model] (see FORMAT.md, "vectors").

CREATE TABLE meta (
    key        VARCHAR PRIMARY KEY,
    value      VARCHAR NOT NULL
);

CREATE TABLE migrations (
    version    INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL
);

CREATE TABLE models (
    model_id   INTEGER PRIMARY KEY,
    name       VARCHAR NOT NULL,
    revision   VARCHAR,
    family     VARCHAR,
    dtype      VARCHAR NOT NULL,
    n_layers   INTEGER NOT NULL,
    d_model    INTEGER NOT NULL,
    d_mlp      INTEGER,
    vocab_size INTEGER,
    config     JSON,
    added_at   TIMESTAMP NOT NULL
);

CREATE TABLE vocab (
    token_id   INTEGER PRIMARY KEY,
    text       VARCHAR NOT NULL
);

CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY,
    kind        VARCHAR NOT NULL,
    params      JSON,
    versions    JSON,
    status      VARCHAR NOT NULL,      -- running | done | failed
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    message     VARCHAR
);

CREATE TABLE prompts (
    prompt_id    VARCHAR PRIMARY KEY,
    query_id     VARCHAR,
    condition    VARCHAR,              -- intrinsic | prompted | other
    target_value VARCHAR,              -- NULL for intrinsic
    language     VARCHAR,
    template_id  VARCHAR,
    system_text  VARCHAR,
    user_text    VARCHAR NOT NULL,
    chat_text    VARCHAR,              -- the prompt as the chat template rendered it
    source       VARCHAR
);

CREATE TABLE responses (
    response_id VARCHAR PRIMARY KEY,
    prompt_id   VARCHAR NOT NULL,
    sample_idx  INTEGER NOT NULL,
    text        VARCHAR NOT NULL,
    gen_params  JSON,
    seed        BIGINT,
    source      VARCHAR,               -- generated | imported:<name>
    run_id      INTEGER
);

CREATE TABLE labels (
    response_id VARCHAR NOT NULL,
    value       VARCHAR NOT NULL,
    judge_id    VARCHAR NOT NULL,
    expressed   BOOLEAN NOT NULL,
    score       DOUBLE,
    raw         VARCHAR,
    run_id      INTEGER,
    PRIMARY KEY (response_id, value, judge_id)
);

-- One committed append. Rows [row_start, row_start + n_rows) and records
-- [record_start, record_start + n_records) became visible together, in one transaction.
CREATE TABLE batches (
    batch_id     INTEGER PRIMARY KEY,
    run_id       INTEGER,
    key          VARCHAR,              -- caller's idempotency key (resume skips committed keys)
    record_start BIGINT NOT NULL,
    n_records    BIGINT NOT NULL,
    row_start    BIGINT NOT NULL,
    n_rows       BIGINT NOT NULL,
    committed_at TIMESTAMP NOT NULL
);

-- One forward sequence (prompt + response). record_id is also the row of every per-record array.
CREATE TABLE records (
    record_id   BIGINT PRIMARY KEY,
    response_id VARCHAR,
    prompt_id   VARCHAR,
    batch_id    INTEGER NOT NULL,
    row_start   BIGINT NOT NULL,       -- global row of its first stored token
    n_tokens    INTEGER NOT NULL,
    prompt_len  INTEGER NOT NULL       -- tokens before the first response token
);

-- One row per stored token; `row` indexes every per-token array. No padding rows exist.
CREATE TABLE tokens (
    "row"       BIGINT NOT NULL,
    record_id   BIGINT NOT NULL,
    position    INTEGER NOT NULL,
    token_id    INTEGER NOT NULL,
    role        VARCHAR NOT NULL       -- system | user | template | response
);

-- Every Zarr array in arrays/, with what it holds. n_rows counts committed rows only:
-- readers never look past it, whatever the Zarr metadata says.
CREATE TABLE arrays (
    name          VARCHAR PRIMARY KEY, -- path inside arrays/, e.g. token/resid_post/7
    kind          VARCHAR NOT NULL,    -- activation | weight
    site          VARCHAR,             -- resid_post | mlp_act | mlp_down | unembed | ...
    layer         INTEGER,
    pool          VARCHAR,             -- token | mean_response | last_prompt | NULL for weights
    n_rows        BIGINT NOT NULL,
    width         INTEGER NOT NULL,
    dtype         VARCHAR NOT NULL,    -- storage dtype (numpy string), e.g. <u2
    logical_dtype VARCHAR NOT NULL,    -- float32 | float16 | bfloat16
    chunk_rows    INTEGER NOT NULL,
    shard_chunks  INTEGER NOT NULL,    -- 1 = unsharded
    codec         VARCHAR NOT NULL,    -- none | blosc-lz4 | blosc-zstd | zstd
    created_at    TIMESTAMP NOT NULL
);

-- CRC-32 of the decoded bytes of the first n_rows rows of each chunk (committed rows only,
-- so a crash that wrote uncommitted rows into a tail chunk never breaks verification).
CREATE TABLE chunk_checksums (
    name    VARCHAR NOT NULL,
    chunk   BIGINT NOT NULL,
    n_rows  INTEGER NOT NULL,
    crc32   BIGINT NOT NULL,
    PRIMARY KEY (name, chunk)
);

CREATE TABLE neuron_scores (
    run_id      INTEGER NOT NULL,
    value       VARCHAR,
    layer       INTEGER NOT NULL,
    neuron      INTEGER NOT NULL,
    score       DOUBLE NOT NULL,
    rank        INTEGER,
    class       VARCHAR,               -- shared | intrinsic_unique | prompted_unique | unclassified
    angle_deg   DOUBLE,
    proj_shared DOUBLE,
    proj_unique DOUBLE,
    attribution DOUBLE,
    method      VARCHAR
);

-- actstore format 4: steering sweeps, their generations and metrics.
-- Keys are deterministic hashes of what was asked (see analyses/steering/keys.py), so re-running a
-- finished sweep finds every row already there and does no work.

-- One sweep: vectors/neuron sets x layers x strengths x prompts x samples, with its evaluations.
CREATE TABLE steering_sweeps (
    sweep_id    VARCHAR PRIMARY KEY,   -- hash of the spec (model, vectors, layers, strengths, prompts, evals, ...)
    run_id      INTEGER,               -- the runs row of the (first) run that worked on it
    model       VARCHAR NOT NULL,      -- model name or path steered
    spec        JSON NOT NULL,         -- the full spec, as given
    status      VARCHAR NOT NULL,      -- running | done
    created_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP
);

-- One setting of a sweep: no intervention (kind 'baseline'), adding a vector, ablating a direction,
-- or scaling / fixing a neuron set, at given layers and strength.
CREATE TABLE steering_settings (
    setting_id  VARCHAR PRIMARY KEY,   -- hash of (sweep_id, what is applied)
    sweep_id    VARCHAR NOT NULL,
    kind        VARCHAR NOT NULL,      -- baseline | add | ablate | neurons
    vector_id   INTEGER,               -- vectors.vector_id for add / ablate
    vector_kind VARCHAR,               -- intrinsic | prompted | shared | intrinsic_unique | prompted_unique | mean_delta | ...
    value       VARCHAR,               -- the vector's (or neuron set's) value, if any
    neuron_set  VARCHAR,               -- steering_neuron_sets.set_id for kind neurons
    layers      VARCHAR,               -- layers acted on, e.g. "6" or "2,3,4"
    alpha       DOUBLE,                -- strength as given (add), or NULL
    alpha_mode  VARCHAR,               -- absolute | relative (alpha times the mean residual norm)
    scale       DOUBLE,                -- the factor finally applied to the vector (add)
    beta        DOUBLE,                -- neuron factor (neuron mode 'scale')
    neuron_mode VARCHAR,               -- scale | zero | mean
    positions   VARCHAR NOT NULL,      -- all | generated
    meta        JSON
);

-- The neurons of a neuron set chosen by SQL over neuron_scores.
CREATE TABLE steering_neuron_sets (
    set_id      VARCHAR NOT NULL,      -- hash of the query and its members
    query       VARCHAR NOT NULL,
    layer       INTEGER NOT NULL,
    neuron      INTEGER NOT NULL,
    mean_act    DOUBLE,                -- stored mean activation (for neuron mode 'mean')
    PRIMARY KEY (set_id, layer, neuron)
);

-- One generated response under one setting.
CREATE TABLE steering_generations (
    generation_id VARCHAR PRIMARY KEY, -- hash of (setting_id, eval, item, sample)
    setting_id    VARCHAR NOT NULL,
    sweep_id      VARCHAR NOT NULL,
    eval          VARCHAR NOT NULL,    -- expression | questionnaire | mcq | jailbreak | instructions
    item_id       VARCHAR NOT NULL,    -- the prompt, question or item within the eval
    sample_idx    INTEGER NOT NULL,
    system_text   VARCHAR,
    user_text     VARCHAR NOT NULL,
    text          VARCHAR NOT NULL,
    verdict       DOUBLE,              -- the per-response score the eval gave (1/0, a rating), if any
    created_at    TIMESTAMP NOT NULL
);

-- One number per (setting, eval, metric): e.g. expression.tradition, distinct_2, accuracy, asr.
CREATE TABLE steering_metrics (
    setting_id  VARCHAR NOT NULL,
    sweep_id    VARCHAR NOT NULL,
    eval        VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    value       DOUBLE,
    n           INTEGER,               -- responses (or items) behind the number
    PRIMARY KEY (setting_id, eval, metric)
);

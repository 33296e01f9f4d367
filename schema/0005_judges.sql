-- actstore format 5: judge abstentions and judge evaluations.

-- An unparseable verdict is an abstention, not a "no": labels.expressed is NULL for it (raw keeps
-- what the judge said, so the pair can be found and re-judged).
ALTER TABLE labels ALTER COLUMN expressed DROP NOT NULL;

-- record_labels leaves abstentions out, so that every analysis built on it skips them.
CREATE OR REPLACE VIEW record_labels AS
SELECT i.record_id, i.response_id, i.prompt_id, i.condition, i.target_value, i.language,
       l.value, l.expressed, l.score, l.judge_id
FROM records_info i
JOIN labels l ON l.response_id = i.response_id
WHERE l.expressed IS NOT NULL;

-- How well a judge agrees with gold labels (people's, or a trusted judge's): one row per value and
-- one with value 'all' (every pair pooled), per evaluation. Estimates with bootstrap percentile
-- intervals (responses resampled); NULL where undefined (e.g. precision with no positive verdict).
CREATE TABLE judge_evals (
    eval_id      INTEGER NOT NULL,
    value        VARCHAR NOT NULL,      -- a value slug, or 'all'
    judge_id     VARCHAR NOT NULL,      -- the judge evaluated (as it writes labels.judge_id)
    gold         VARCHAR NOT NULL,      -- value-portrait:PATH | labels:JUDGE_ID (gold labels in this store)
    method       VARCHAR NOT NULL,      -- judge (its own verdicts) | crossfit (thresholds chosen out of fold) | cv-head
    n            INTEGER NOT NULL,      -- pairs with a gold label
    n_pos        INTEGER NOT NULL,      -- gold positives
    n_pred_pos   INTEGER NOT NULL,      -- judged positive
    abstained    INTEGER NOT NULL,      -- pairs the judge abstained on (left out of kappa, precision, recall)
    threshold    DOUBLE,                -- score threshold fitted on all the gold pairs (for ingest label --threshold from-eval)
    kappa        DOUBLE, kappa_lo     DOUBLE, kappa_hi     DOUBLE,
    "precision"  DOUBLE, precision_lo DOUBLE, precision_hi DOUBLE,
    recall       DOUBLE, recall_lo    DOUBLE, recall_hi    DOUBLE,
    auc          DOUBLE, auc_lo       DOUBLE, auc_hi       DOUBLE,  -- ROC AUC of the score
    params       JSON,                  -- folds, bootstrap replicates, alpha, seed, ...
    run_id       INTEGER,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (eval_id, value)
);

-- 0006: an interval on every rate a steering sweep records (issue 14).
-- `lo`, `hi`: the 95% Wilson score interval of a rate (a share of `n` answers: expression, any_value,
-- asr, refusal_rate, compliance, accuracy, follow_rate); NULL for metrics that are not a share of n.
ALTER TABLE steering_metrics ADD COLUMN lo DOUBLE;
ALTER TABLE steering_metrics ADD COLUMN hi DOUBLE;

-- actstore format 2: views for the common joins.

-- A record with everything about its prompt and response.
CREATE VIEW records_info AS
SELECT r.record_id, r.response_id, coalesce(r.prompt_id, s.prompt_id) AS prompt_id,
       p.query_id, p.condition, p.target_value, p.language, p.template_id, p.source,
       s.sample_idx, r.row_start, r.n_tokens, r.prompt_len, r.batch_id
FROM records r
LEFT JOIN responses s ON s.response_id = r.response_id
LEFT JOIN prompts p ON p.prompt_id = coalesce(r.prompt_id, s.prompt_id);

-- A stored token with its text, role and its record's metadata.
CREATE VIEW tokens_info AS
SELECT t."row", t.record_id, t.position, t.token_id, v.text AS token_text, t.role,
       i.prompt_id, i.response_id, i.query_id, i.condition, i.target_value, i.language
FROM tokens t
JOIN records_info i USING (record_id)
LEFT JOIN vocab v USING (token_id);

-- One row per (record, judged value): the labels joined to their records.
CREATE VIEW record_labels AS
SELECT i.record_id, i.response_id, i.prompt_id, i.condition, i.target_value, i.language,
       l.value, l.expressed, l.score, l.judge_id
FROM records_info i
JOIN labels l ON l.response_id = i.response_id;

-- actstore format 7: the system text the model saw, per prompt.
-- Many chat templates write a default system prompt when the messages have none (SmolLM2, Qwen2.5):
-- system_text stays what was sent (NULL: no system message; '': an explicit empty one), and
-- effective_system is what the model read: system_text when one was sent, else the template's
-- default system prompt, else NULL. Rows from older stores: prompts that sent a system message get
-- it; those that sent none stay NULL (their template was not checked; chat_text shows what it wrote).
ALTER TABLE prompts ADD COLUMN effective_system VARCHAR;
UPDATE prompts SET effective_system = system_text WHERE system_text IS NOT NULL;

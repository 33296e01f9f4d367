"""Fitted embedding-judge heads shipped with actstore (data only: ``NAME.npz`` and its ``NAME.json``).

``value_portrait_minilm.npz`` is the ``embed:value-portrait`` judge: a logistic head on the ten
zero-shot prototype scores of all-MiniLM-L6-v2, fitted on Value Portrait's human tags (MIT licensed,
Copyright (c) 2025 The Authors). ``value_portrait_minilm.json`` records the data's source commit and
licence, the command that rebuilds the head, and its cross-validated agreement. Rebuild it from the
repository root with that command (see README, Judges); ``tests/ingest/test_judges_embed.py`` checks
the shipped weights against a refit.
"""

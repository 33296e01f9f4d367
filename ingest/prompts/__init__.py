"""Prompt sets: queries, value-priority system prompts, and the intrinsic/prompted prompt set."""

from .build import build_prompts
from .loaders import (
    load_builtin_queries,
    load_hf_queries,
    load_queries,
    load_query_table,
    parse_column_mapping,
)
from .model import INTRINSIC_SYSTEM, Prompt, Query, Template, check_intrinsic_system, stable_id
from .templates import builtin_templates
from .value_portrait import TaggedResponse, load_value_portrait_queries, load_value_portrait_tagged

__all__ = [
    "INTRINSIC_SYSTEM",
    "Prompt",
    "Query",
    "TaggedResponse",
    "Template",
    "build_prompts",
    "builtin_templates",
    "check_intrinsic_system",
    "load_builtin_queries",
    "load_hf_queries",
    "load_queries",
    "load_query_table",
    "load_value_portrait_queries",
    "load_value_portrait_tagged",
    "parse_column_mapping",
    "stable_id",
]

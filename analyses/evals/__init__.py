"""Evaluations for steering runs."""

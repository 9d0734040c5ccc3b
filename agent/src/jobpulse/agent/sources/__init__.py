"""Metric sources: one module per kind of thing measured (cgroups, node, GPUs)."""

"""Pruning strategies: each one only defines how samples are scored."""

from ._random_pruner import RandomPruner

__all__ = ["RandomPruner"]

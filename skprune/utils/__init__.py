"""Utilities shared by skprune's estimators.

The private modules hold the torch helpers every pruner and quota uses, one
concept each: random states (``_random_state``), devices (``_devices``),
data as torch modules expect it (``_torch_data``) and calling modules and
checking their outputs (``_modules``).
"""

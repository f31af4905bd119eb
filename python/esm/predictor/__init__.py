"""Compiled predictors: genomes -> costs -> features -> model in C++, chunked and threaded."""

from __future__ import annotations

from esm.predictor.model import KINDS, ModelArrays

__all__ = ["KINDS", "ModelArrays"]

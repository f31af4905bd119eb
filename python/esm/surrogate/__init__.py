"""Latency surrogates: encoders, regressors, metrics and the model file.

``Surrogate``, ``load`` and the encoders need only NumPy and the compiled core; the
regressors (``esm.surrogate.models``) need scikit-learn and are imported when training.
"""

from __future__ import annotations

from esm.surrogate.encoders import DEVICE_SPECS, ENCODERS, Encoder, get_encoder
from esm.surrogate.surrogate import Surrogate, load

__all__ = ["DEVICE_SPECS", "ENCODERS", "Encoder", "Surrogate", "get_encoder", "load"]

"""Once-for-All's efficiency-predictor interface on an esm latency surrogate.

OFA (Cai et al., ICLR 2020; mit-han-lab/once-for-all) searches its sub-networks with
``ofa.nas.search_algorithm.EvolutionFinder(efficiency_predictor, accuracy_predictor)``; the
finder calls ``efficiency_predictor.get_efficiency(arch_dict)`` on every candidate and keeps
those with ``efficiency <= constraint``. :class:`EfficiencyPredictor` answers that call with an
esm surrogate, so the finder runs unchanged on a latency model of your own device:

>>> from ofa.nas.search_algorithm import EvolutionFinder              # doctest: +SKIP
>>> from esm.integrations.ofa import EfficiencyPredictor               # doctest: +SKIP
>>> finder = EvolutionFinder(EfficiencyPredictor("titan.esm"), accuracy_predictor)  # doctest: +SKIP
>>> best_valids, (acc, arch, ms) = finder.run_evolution_search(20.0)  # doctest: +SKIP

``arch_dict`` is OFA's dict: for MobileNetV3 (space ``ofa-mbv3``) ``ks``, ``e`` (20 each),
``d`` (5) and ``image_size`` (what ``MobileNetArchEncoder.random_sample_arch`` makes); for
ResNet50 (``ofa-resnet50``) ``d``, ``e``, ``w`` and ``image_size``. The tutorial's finder
(``ofa.tutorial.evolution_finder``) calls ``predict_efficiency`` with the resolution as
``r: [224]`` and ``wid: None``; both forms are accepted, and blocks that OFA's encoder marks as
skipped (``ks``/``e`` of 0 past a stage's depth) are fine. This module needs nothing from OFA.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.search.problem import load_model, model_space
from esm.spaces.base import SearchSpace

__all__ = ["EfficiencyPredictor"]

#: OFA's names for the resolution key, in the order they are looked for.
_RESOLUTION_KEYS = ("image_size", "r")


class EfficiencyPredictor:
    """An esm surrogate behind OFA's efficiency-predictor interface.

    Parameters
    ----------
    model : str, Path or object with ``predict(genomes)``
        A surrogate file (loaded and compiled), a loaded surrogate or a compiled predictor.
    space : SearchSpace, optional
        Default: the model's space (``ofa-mbv3`` or ``ofa-resnet50``: spaces whose text form is
        OFA's dict).

    Notes
    -----
    The efficiency is the surrogate's prediction, in its unit (milliseconds for a latency
    model). A dict that is not an architecture of the space (a wrong key, a value outside the
    space's choices, a resolution the space does not have) raises :class:`esm.InputError`.
    """

    def __init__(self, model: Any, space: SearchSpace | None = None) -> None:
        if isinstance(model, (str, Path)):
            model = load_model(model)
        if not callable(getattr(model, "predict", None)):
            raise InputError("EfficiencyPredictor needs a surrogate file or an object with "
                             "predict(genomes)")
        space = space if space is not None else model_space(model)
        if space is None:
            raise InputError("no search space: pass space= or a model with .space")
        self.model, self.space = model, space
        # The space's text form gives the keys; genomes of all-first and all-last choices give
        # two different values for every gene with a choice (to place OFA's skipped blocks).
        try:
            self._low = json.loads(space.to_str(np.zeros(space.genome_length, dtype=np.int32)))
            self._high = json.loads(space.to_str(space.choices.astype(np.int32) - 1))
        except ValueError:
            self._low = None
        if not isinstance(self._low, dict):
            raise InputError(f"space {space.name} has no OFA-style dict text form")

    # ------------------------------------------------------------------ OFA's interface
    def get_efficiency(self, arch_dict: Mapping[str, Any]) -> float:
        """Predicted efficiency (e.g. latency in ms) of one OFA ``arch_dict``."""
        return float(self.model.predict(self.to_genomes([arch_dict]))[0])

    def predict_efficiency(self, arch_dict: Mapping[str, Any]) -> float:
        """The name OFA's tutorial finder calls; same as :meth:`get_efficiency`."""
        return self.get_efficiency(arch_dict)

    # ------------------------------------------------------------------ batches
    def get_efficiencies(self, arch_dicts: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Predicted efficiencies of many ``arch_dict`` in one surrogate call, ``[N]``."""
        return np.asarray(self.model.predict(self.to_genomes(arch_dicts)), dtype=np.float64)

    def to_genomes(self, arch_dicts: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """esm genomes ``[N, G]`` of OFA ``arch_dict`` s."""
        rows = [self._genome(a) for a in arch_dicts]
        if not rows:
            return np.zeros((0, self.space.genome_length), dtype=np.int32)
        return np.stack(rows)

    def to_arch_dict(self, genome: Any) -> dict[str, Any]:
        """OFA's ``arch_dict`` (with ``image_size``) of one esm genome."""
        d = json.loads(self.space.to_str(genome))
        d["image_size"] = d.pop("r")
        return d

    def _genome(self, arch_dict: Mapping[str, Any]) -> np.ndarray:
        if not isinstance(arch_dict, Mapping):
            raise InputError(f"an OFA arch_dict must be a dict, got {type(arch_dict).__name__}")
        # plain Python values; the tutorial's "wid": None is no key
        d = {k: np.asarray(v).tolist() for k, v in arch_dict.items() if v is not None}
        r = [d.pop(k) for k in _RESOLUTION_KEYS if k in d]
        if len(r) != 1:
            raise InputError(f"arch_dict needs exactly one of image_size or r, got {sorted(d)}")
        if isinstance(r[0], list):  # the tutorial's "r": [224]
            if len(r[0]) != 1:
                raise InputError(f"arch_dict resolution must be one value, got {r[0]!r}")
            r = r[0]
        d["r"] = r[0]
        if set(d) != set(self._low):
            raise InputError(f"{self.space.name}: arch_dict keys {sorted(d)}, expected "
                             f"{sorted(set(self._low) - {'r'})} and image_size")
        skipped = {k: [i for i, x in enumerate(v) if x == 0 and 0 not in
                       (self._low[k][i], self._high[k][i])]
                   for k, v in d.items()
                   if isinstance(v, list) and isinstance(self._low[k], list)
                   and len(v) == len(self._low[k])}
        if not any(skipped.values()):
            return self.space.from_str(json.dumps(d))
        # OFA's encoder writes 0 for blocks past a stage's depth: any value gives the same
        # network there, so fill them in twice and require the same canonical genome.
        low, high = (self.space.from_str(json.dumps(_fill(d, skipped, ref)))
                     for ref in (self._low, self._high))
        if not np.array_equal(self.space.canonical(low), self.space.canonical(high)):
            raise InputError(f"{self.space.name}: arch_dict has a 0 in an active block")
        return low


def _fill(d: dict[str, Any], at: dict[str, list[int]], ref: dict[str, Any]) -> dict[str, Any]:
    out = {k: list(v) if isinstance(v, list) else v for k, v in d.items()}
    for k, idx in at.items():
        for i in idx:
            out[k][i] = ref[k][i]
    return out

"""esm.integrations.ofa: OFA's efficiency-predictor interface, and OFA's own evolution finder
(when the ``ofa`` package is installed) searching on an esm surrogate."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from esm import spaces
from esm.errors import InputError
from esm.integrations.ofa import EfficiencyPredictor
from esm.search.toy import CostModel


@pytest.fixture(scope="module", params=["ofa-mbv3", "ofa-resnet50"])
def predictor(request: pytest.FixtureRequest) -> EfficiencyPredictor:
    return EfficiencyPredictor(CostModel(spaces.get(request.param)))


def test_arch_dicts_round_trip_and_predict(predictor: EfficiencyPredictor) -> None:
    space, model = predictor.space, predictor.model
    g = space.sample(20, seed=0)
    dicts = [predictor.to_arch_dict(x) for x in g]
    assert set(dicts[0]) == {"ks", "e", "d", "image_size"} or \
        set(dicts[0]) == {"d", "e", "w", "image_size"}
    np.testing.assert_array_equal(predictor.to_genomes(dicts), g)
    want = model.predict(g)
    np.testing.assert_allclose(predictor.get_efficiencies(dicts), want)
    assert predictor.get_efficiency(dicts[3]) == pytest.approx(want[3])
    # the tutorial finder's form: predict_efficiency, r as a one-element list, wid None
    tut = {**{k: v for k, v in dicts[3].items() if k != "image_size"},
           "r": [dicts[3]["image_size"]], "wid": None}
    assert predictor.predict_efficiency(tut) == pytest.approx(want[3])
    # numpy values are fine
    npd = {k: np.asarray(v) for k, v in dicts[4].items()}
    assert predictor.get_efficiency(npd) == pytest.approx(want[4])
    assert predictor.to_genomes([]).shape == (0, space.genome_length)


def test_skipped_blocks_written_as_zero() -> None:
    space = spaces.get("ofa-mbv3")
    pred = EfficiencyPredictor(CostModel(space))
    arch = pred.to_arch_dict(space.sample(1, seed=2)[0])
    arch["d"][1] = 2  # stage 1 has blocks 4..7: blocks 6 and 7 are skipped
    zeroed = {**arch, "ks": list(arch["ks"]), "e": list(arch["e"])}
    zeroed["ks"][6] = zeroed["ks"][7] = zeroed["e"][6] = zeroed["e"][7] = 0
    assert pred.get_efficiency(zeroed) == pytest.approx(pred.get_efficiency(arch))
    zeroed["ks"][4] = 0  # an active block
    with pytest.raises(InputError, match="active block"):
        pred.get_efficiency(zeroed)


def test_bad_arch_dicts_are_refused(predictor: EfficiencyPredictor) -> None:
    arch = predictor.to_arch_dict(predictor.space.sample(1, seed=1)[0])
    bad: list[Any] = [
        {**arch, "image_size": 225},                      # resolution outside the space
        {k: v for k, v in arch.items() if k != "image_size"},  # no resolution
        {**arch, "r": arch["image_size"]},                 # two resolutions
        {**arch, "image_size": [160, 176]},
        {**arch, "extra": 1},
        {k: v for k, v in arch.items() if k != "e"},
        {**arch, "e": arch["e"][:-1]},
        [1, 2, 3],
    ]
    for b in bad:
        with pytest.raises(InputError):
            predictor.get_efficiency(b)


def test_model_files_and_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        EfficiencyPredictor(tmp_path / "missing.esm")
    with pytest.raises(InputError, match="predict"):
        EfficiencyPredictor(object())
    with pytest.raises(InputError, match="dict text form"):
        EfficiencyPredictor(CostModel(spaces.get("nb201")))


# ---------------------------------------------------------------------- OFA's own code
def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ofa() -> types.SimpleNamespace:
    """OFA's EvolutionFinder, arch encoders and AccuracyPredictor from the installed package.

    OFA's released package (0.1.0.post202307202001) does not import ``ofa.nas.accuracy_predictor``
    on torch >= 2: ``ofa.utils`` imports ``torch._six`` (removed in torch 2.0;
    mit-han-lab/once-for-all#79) and torchvision. The finder itself imports fine; the encoder
    and predictor files are then loaded directly, with the one name ``arch_encoder.py`` takes
    from ``ofa.imagenet_classification.networks`` (``ResNets.BASE_DEPTH_LIST``, ``[2, 2, 4, 2]``
    in OFA) provided while it loads.
    """
    finder = pytest.importorskip("ofa.nas.search_algorithm",
                                 reason="OFA is not installed (pip install ofa tqdm)")
    pytest.importorskip("torch")
    try:
        from ofa.nas.accuracy_predictor import (
            AccuracyPredictor,
            MobileNetArchEncoder,
            ResNetArchEncoder,
        )
    except Exception:
        import ofa as ofa_pkg

        root = Path(ofa_pkg.__file__).parent / "nas" / "accuracy_predictor"
        nets = types.ModuleType("ofa.imagenet_classification.networks")
        nets.ResNets = type("ResNets", (), {"BASE_DEPTH_LIST": [2, 2, 4, 2]})  # type: ignore[attr-defined]
        saved = sys.modules.get(nets.__name__)
        sys.modules[nets.__name__] = nets
        try:
            enc = _load_file("_ofa_arch_encoder", root / "arch_encoder.py")
        finally:
            if saved is None:
                del sys.modules[nets.__name__]
            else:
                sys.modules[nets.__name__] = saved
        acc = _load_file("_ofa_acc_predictor", root / "acc_predictor.py")
        AccuracyPredictor, MobileNetArchEncoder = acc.AccuracyPredictor, enc.MobileNetArchEncoder
        ResNetArchEncoder = enc.ResNetArchEncoder
    return types.SimpleNamespace(EvolutionFinder=finder.EvolutionFinder,
                                 AccuracyPredictor=AccuracyPredictor,
                                 MobileNetArchEncoder=MobileNetArchEncoder,
                                 ResNetArchEncoder=ResNetArchEncoder)


class _Counting(CostModel):
    calls = 0

    def predict(self, genomes: Any) -> np.ndarray:
        self.calls += 1
        return super().predict(genomes)


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-resnet50"])
def test_ofa_evolution_finder_searches_on_an_esm_surrogate(ofa: types.SimpleNamespace,
                                                          name: str) -> None:
    import random

    import torch

    space = spaces.get(name)
    model = _Counting(space)
    eff = EfficiencyPredictor(model)
    sizes = [128, 160, 192, 224]
    encoder = (ofa.MobileNetArchEncoder if name == "ofa-mbv3" else ofa.ResNetArchEncoder)(
        image_size_list=sizes)
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 (OFA's finder draws from NumPy's global generator)
    torch.manual_seed(0)
    acc = ofa.AccuracyPredictor(encoder, hidden_size=32, n_layers=2, device="cpu")
    samples = [encoder.random_sample_arch() for _ in range(200)]
    lat = eff.get_efficiencies(samples)
    constraint = float(np.quantile(lat, 0.3))
    # OFA's encoder round trip writes 0 for skipped blocks: same network, same latency
    back = [encoder.feature2arch(encoder.arch2feature(s)) for s in samples[:20]]
    np.testing.assert_allclose(eff.get_efficiencies(back), lat[:20])

    finder = ofa.EvolutionFinder(eff, acc, population_size=16, max_time_budget=6)
    with torch.no_grad():
        best_valids, best = finder.run_evolution_search(constraint)
    acc_value, arch, efficiency = best
    assert efficiency <= constraint
    assert efficiency == pytest.approx(float(model.predict(eff.to_genomes([arch]))[0]))
    assert best_valids[-1] == pytest.approx(acc_value)
    assert model.calls > 16 * 7  # one get_efficiency per candidate, through esm

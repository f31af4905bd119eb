"""Record what the hand-written spaces gave before they became spec files (issue 18).

Run once at commit 239dad2 (the last commit with the hand-written ofa-mbv3, ofa-resnet50 and
fbnet spaces): ``PYTHONPATH=python python tests/data/before_spec/make_fixtures.py``. The
outputs are the oracle of tests/test_spec_legacy.py, which also uses its ``digest`` and
``fill``; ``main`` does not run on later commits (it uses the old spaces' private helpers).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
SPACES = {
    "ofa-mbv3": [{}, {"width_mult": 1.0}, {"width_mult": 0.25, "resolutions": [32, 40, 4],
                                           "n_classes": 10}],
    "ofa-resnet50": [{}, {"resolutions": [160, 224, 32], "n_classes": 10}],
    "fbnet": [{}, {"dataset": "imagenet"}, {"n_classes": 10}],
    "nb201": [{}],
}
ENCODINGS = ("onehot", "stats", "layerwise", "roofline", "fcc")


def digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fill(module: Any) -> None:
    """Deterministic weights and BN statistics, tensor k of the state dict from seed k."""
    import torch

    with torch.no_grad():
        for k, (name, t) in enumerate(module.state_dict().items()):
            if not t.is_floating_point():
                continue
            g = torch.Generator().manual_seed(k)
            v = torch.rand(t.shape, generator=g) if name.endswith("running_var") else \
                torch.randn(t.shape, generator=g) * 0.1
            t.copy_(v + (0.5 if name.endswith("running_var") else 0.0))


def main() -> None:
    import torch

    from esm import spaces
    from esm.predictor.plan import space_tables
    from esm.surrogate import Surrogate, get_encoder
    from esm.surrogate.encoders import _gene_slots, _stage_groups

    out: dict = {}
    arrays: dict[str, np.ndarray] = {}
    for name, variants in SPACES.items():
        for vi, params in enumerate(variants):
            sp = spaces.get(name, **params)
            key = f"{name}#{vi}"
            rec: dict = {"name": name, "params": params, "space_params": sp.params(),
                         "gene_names": list(sp.gene_names), "slot_names": list(sp.slot_names),
                         "choices": sp.choices.tolist()}
            g = sp.sample(100_000, seed=0)
            c = sp.costs(g)
            rec["costs_100k"] = digest(c.macs, c.params, c.activation_bytes, c.layers, c.slots)
            small = sp.sample(2000, seed=1)
            cs = sp.costs(small)
            rec["digests"] = {
                "totals": digest(np.stack(list(cs.totals().values()), 1)),
                "slots": digest(cs.slots), "canonical": digest(sp.canonical(small)),
                "active": digest(sp.active_slots(small))}
            arrays[f"{key}/totals"] = np.stack(list(cs.totals().values()), 1)[:100]
            rec["texts"] = sp.to_strs(small[:5])
            rec["texts_digest"] = hashlib.sha256("\n".join(sp.to_strs(small)).encode()).hexdigest()
            rec["gene_slots"] = _gene_slots(sp).tolist()
            st_names, st_of = _stage_groups(sp)
            rec["stages"] = [st_names, st_of.tolist()]
            t = space_tables(sp)
            rec["plan_tables"] = {k: np.asarray(v).tolist() for k, v in t.items()}
            feats = {}
            for enc in ENCODINGS:
                e = get_encoder(enc, sp)
                x = e.transform(small)
                rec["digests"][f"features/{enc}"] = digest(x)
                arrays[f"{key}/features/{enc}"] = x[:20]
                feats[enc] = hashlib.sha256("|".join(e.feature_names).encode()).hexdigest()
            rec["feature_names"] = feats
            if vi == 0:
                mods = []
                for j, genome in enumerate(sp.sample(3, seed=5)):
                    net = sp.build(genome)
                    fill(net)
                    shape = sp.input_shape(genome, 2)
                    x = torch.randn(shape, generator=torch.Generator().manual_seed(99))
                    with torch.no_grad():
                        y = net.eval()(x)
                    arrays[f"{key}/module{j}/output"] = y.numpy()
                    mods.append({"genome": genome.tolist(), "input_shape": list(shape),
                                 "state": [[n, list(v.shape)] for n, v in
                                           net.state_dict().items()]})
                rec["modules"] = mods
            out[key] = rec
            print(key, "done")
    # model files: one per space, trained on synthetic latencies (costs + noise) or real data
    models = []
    for name, enc, model in (("ofa-mbv3", "fcc", "ridge"), ("ofa-resnet50", "onehot", "lut"),
                             ("fbnet", "fcc", "ridge"), ("nb201", "layerwise", "ridge"),
                             ("ofa-mbv3", "onehot", "gbt")):
        sp = spaces.get(name)
        rng = np.random.default_rng(3)
        g = sp.canonical(sp.sample(120, seed=4))
        c = sp.costs(g)
        y = (c.macs / 1e7 + c.activation_bytes / 1e6 + c.layers * 0.05 + 1.0) * \
            rng.lognormal(0, 0.03, len(g))
        sur = Surrogate.fit(sp, g, y, encoding=enc, model=model, seed=0)
        fname = f"{name}-{enc}-{model}.esm"
        sur.save(HERE / fname)
        probe = sp.sample(256, seed=123)
        arrays[f"model/{fname}/genomes"] = probe
        arrays[f"model/{fname}/predictions"] = np.asarray(sur.predict(probe))
        models.append(fname)
    out["model_files"] = models
    (HERE / "before.json").write_text(json.dumps(out, indent=1, sort_keys=True))
    np.savez_compressed(HERE / "before.npz", **arrays)


if __name__ == "__main__":
    main()

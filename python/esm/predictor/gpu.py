"""The predictor on a CUDA device (``device="cuda"``).

Families on the device: linear (and the LUT: a linear model over one-hot genes, evaluated
straight from genomes on the device) and tree ensembles; other families raise InputError.
For encodings that need costs (the default ``fcc`` and the other compiled plans), genomes go
through the flat device pipeline (``_cuda.DevicePipeline``: gene check, cost walk and encode,
one thread per genome), with a linear model folded into the encode and trees fed from device
memory; without the pipeline (a space without a device cost walk) the features are computed by
the compiled CPU encoder chunk by chunk and copied to the device. With cupy installed, cupy
arrays are accepted and a cupy array is returned for cupy input; without cupy, NumPy arrays go
in and out (copies made by esm).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from esm.errors import InputError


def _cupy() -> Any | None:
    if importlib.util.find_spec("cupy") is None:
        return None
    import cupy

    return cupy


def _is_cupy(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


class GpuPredictor:
    """Device twin of a :class:`esm.predictor.Predictor` (built on first ``device="cuda"``)."""

    def __init__(self, predictor: Any) -> None:
        from esm import cuda

        cuda.require()
        from esm import _cuda

        self.mod = _cuda
        self.p = predictor
        m = predictor.model
        a = m.arrays
        f64 = np.ascontiguousarray
        if m.kind == "linear":
            self.model = self.mod.linear_model(
                f64(a["x_mean"], np.float64), f64(a["x_scale"], np.float64), m.target,
                f64(a["coef"], np.float64), float(np.asarray(a["intercept"]).reshape(-1)[0]))
        elif m.kind == "trees":
            i32 = lambda k: f64(a[k], np.int32)  # noqa: E731
            self.model = self.mod.trees_model(
                f64(a["x_mean"], np.float64), f64(a["x_scale"], np.float64), m.target,
                i32("feature"), f64(a["threshold"], np.float64), i32("left"), i32("right"),
                f64(a["value"], np.float64), i32("roots"),
                float(np.asarray(a["base"]).reshape(-1)[0]), str(m.meta.get("rule", "le")),
                str(m.meta.get("input_dtype", "float64")))
        else:
            raise InputError(
                f"device='cuda' supports the linear and trees families, not {m.kind!r}")
        self.lut = self._lut() if m.kind == "linear" else None
        self.pipe = self._pipeline() if self.lut is None else None

    def _pipeline(self) -> Any | None:
        """The flat device pipeline for a compiled encoder plan (None when not applicable)."""
        p = self.p
        if p.encoder is None or not p.fused:
            return None
        from esm import _core
        from esm.predictor.plan import build_plan

        space = p.space
        try:
            flat = _core.FlatPipeline(space.kernel, space.config, build_plan(p.encoder))
            m = p.model
            if m.kind == "linear":
                if m.target not in ("identity", "log"):
                    return None
                a = m.arrays
                flat.set_linear(np.asarray(a["coef"], np.float64),
                                np.asarray(a["x_mean"], np.float64),
                                np.asarray(a["x_scale"], np.float64),
                                float(np.asarray(a["intercept"]).reshape(-1)[0]), m.target)
            return self.mod.DevicePipeline.from_twin(flat)
        except ValueError:  # no device cost walk or too many slots: CPU encoder path
            return None

    def _predict_pipeline(self, genomes: Any, chunk: int) -> Any:
        """Genomes (cupy or NumPy) through the device pipeline; cupy out for cupy in."""
        cp = _cupy()
        if cp is None:
            raise InputError("device='cuda' with a cost-based encoding needs cupy")
        on_device = _is_cupy(genomes)
        pipe = self.pipe
        assert pipe is not None
        G = pipe.n_genes
        if on_device:
            g = cp.ascontiguousarray(genomes, dtype=cp.int32)
        else:
            g = cp.asarray(self.p._genomes(genomes), dtype=cp.int32)
        if g.ndim != 2 or g.shape[1] != G:
            raise InputError(f"genomes must be [N, {G}], got {tuple(g.shape)}")
        n = len(g)
        out = cp.empty(n, dtype=cp.float64)
        bad = cp.empty(n, dtype=cp.int64)
        stream = cp.cuda.get_current_stream().ptr
        if pipe.has_linear:
            pipe.predict_linear(g.data.ptr, n, out.data.ptr, bad.data.ptr, stream)
        else:
            step = max(1, min(int(chunk), n))
            X = cp.empty((step, pipe.n_features), dtype=cp.float64)
            for b in range(0, n, step):
                k = min(step, n - b)
                pipe.features(g[b:].data.ptr, k, X.data.ptr, bad[b:].data.ptr, stream)
                self.model.predict_device(X.data.ptr, k, out[b:].data.ptr, stream)
        if n and int(bad.max()) >= 0:
            self.p.space.validate(cp.asnumpy(g))  # raises with the first bad gene
        return out if on_device else cp.asnumpy(out)

    def _lut(self) -> Any | None:
        """A device LUT when the encoder is plain one-hot (folded standardisation)."""
        p = self.p
        if p.encoder is None or not p.fused:
            return None
        from esm.predictor.plan import build_plan

        plan = build_plan(p.encoder)
        if len(plan["ops"]) != 1 or plan["ops"][0]["kind"] != "onehot":
            return None
        a = p.model.arrays
        coef, mean, scale = (np.asarray(a[k], np.float64) for k in ("coef", "x_mean", "x_scale"))
        table = coef / scale
        bias = float(np.asarray(a["intercept"]).reshape(-1)[0]) - float(np.sum(coef * mean / scale))
        choices = np.asarray(plan["choices"], np.int64)
        offset = np.concatenate([[0], np.cumsum(choices)[:-1]]).astype(np.int64)
        return self.mod.DeviceLut(
            table, offset, np.asarray(plan["ops"][0]["ints"], np.int32),
            np.asarray(plan["slot_gene"], np.int32), np.asarray(plan["slot_active"], np.uint8),
            int(choices.max()), bias, p.model.target == "log")

    # ------------------------------------------------------------------ entry points
    def predict(self, genomes: Any, threads: int = 0, chunk: int = 1 << 20) -> Any:
        cp = _cupy()
        on_device = _is_cupy(genomes)
        if self.lut is not None:
            if on_device and cp is not None:
                g = cp.ascontiguousarray(genomes, dtype=cp.int32)
                if g.ndim != 2 or g.shape[1] != self.lut.n_genes:
                    raise InputError(f"genomes must be [N, {self.lut.n_genes}], got {g.shape}")
                choices = cp.asarray(self.p.space.choices)
                if bool(((g < 0) | (g >= choices)).any()):
                    self.p.space.validate(cp.asnumpy(g))  # raises with the first bad gene
                out = cp.empty(len(g), dtype=cp.float64)
                stream = cp.cuda.get_current_stream().ptr
                self.lut.predict_device(g.data.ptr, len(g), out.data.ptr, stream)
                return out
            g = self.p.space.validate(genomes)
            return np.asarray(self.lut.predict_host(g, int(chunk)))
        if self.pipe is not None and cp is not None:
            return self._predict_pipeline(genomes, chunk)
        host = cp.asnumpy(genomes) if on_device and cp is not None else genomes
        g = self.p._genomes(host)
        n = len(g)
        step = max(1, int(chunk))
        out_host = np.empty(n)
        for b in range(0, n, step):
            X = self.p.encode(g[b : b + step], threads)
            out_host[b : b + step] = self.model.predict_host(X, step)
        return cp.asarray(out_host) if on_device and cp is not None else out_host

    def predict_features(self, X: Any, chunk: int = 1 << 20) -> Any:
        cp = _cupy()
        if _is_cupy(X) and cp is not None:
            x = cp.ascontiguousarray(X, dtype=cp.float64)
            if x.ndim != 2 or x.shape[1] != self.model.n_features:
                raise InputError(f"features must be [N, {self.model.n_features}], got {x.shape}")
            if not bool(cp.isfinite(x).all()):
                raise InputError("features must be finite")
            out = cp.empty(len(x), dtype=cp.float64)
            self.model.predict_device(x.data.ptr, len(x), out.data.ptr,
                                      cp.cuda.get_current_stream().ptr)
            return out
        x = np.ascontiguousarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.model.n_features:
            raise InputError(f"features must be [N, {self.model.n_features}], got {x.shape}")
        if not np.isfinite(x).all():
            raise InputError("features must be finite")
        return np.asarray(self.model.predict_host(x, int(chunk)))

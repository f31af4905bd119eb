"""The :class:`Surrogate`: a space, an encoder and a regressor in array form, saved as one file.

Training needs scikit-learn; a loaded surrogate predicts with NumPy and the compiled core
only (no pickle, torch or scikit-learn).
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import time
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.predictor import reference
from esm.predictor.model import ModelArrays
from esm.spaces.base import SearchSpace
from esm.surrogate import modelfile
from esm.surrogate.encoders import Encoder, encoder_from_dict, get_encoder


def fingerprint(genomes: np.ndarray, targets: np.ndarray) -> str:
    """SHA-256 of the training genomes (int32, row order) and targets (float64)."""
    h = hashlib.sha256()
    g = np.ascontiguousarray(genomes, dtype=np.int32)
    h.update(f"{g.shape[0]}x{g.shape[1] if g.ndim == 2 else 0}".encode())
    h.update(g.tobytes())
    h.update(np.ascontiguousarray(targets, dtype=np.float64).tobytes())
    return h.hexdigest()


def _versions() -> dict[str, str]:
    from esm import __version__

    out = {"esm": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import sklearn

        out["sklearn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def _space(space: SearchSpace | str, params: dict[str, Any] | None = None) -> SearchSpace:
    if isinstance(space, SearchSpace):
        return space
    from esm import spaces

    return spaces.get(str(space), **(params or {}))


class Surrogate:
    """A trained latency surrogate for one search space.

    Build one with :meth:`fit`, or :func:`esm.load` a saved file. ``predict(genomes)`` returns
    latencies in milliseconds.

    Attributes
    ----------
    space : SearchSpace
    encoder : Encoder
    model : esm.predictor.ModelArrays
        The regressor's array form.
    kind, model_meta, arrays
        Its family, its meta with the ``target`` (as the file stores it) and its arrays.
    info : dict
        Everything else that the file records: ``model`` (name, chosen candidate, CV
        scores), ``target`` (transform, column, device), ``training`` (rows, fingerprint,
        seed), ``metrics``, ``versions``, ``created``.
    train_genomes : np.ndarray
        Canonical genomes of the training rows (to evaluate on the other rows only).
    measured_genomes : np.ndarray
        Canonical genomes of every other network the build measured on the target device
        (validation, failed and reference networks): evaluation skips them too
        (:meth:`measured_on`).
    constant_output_ms : float or None
        The latency of every network whose output does not depend on its input
        (:meth:`~esm.spaces.SearchSpace.constant_output`) on a device that folds them (a
        transfer fit learns it; ``info["constant_output_ms"]``), or None: the model predicts
        them as any other network.
    pruned : bool
        Whether the device prunes dead operations: every network is predicted from its
        :meth:`~esm.spaces.SearchSpace.pruned` form (a transfer fit learns it;
        ``info["pruned"]``).
    """

    def __init__(self, space: SearchSpace, encoder: Encoder, kind: str,
                 model_meta: dict[str, Any], arrays: dict[str, np.ndarray],
                 info: dict[str, Any], train_genomes: np.ndarray | None = None,
                 measured_genomes: np.ndarray | None = None) -> None:
        self.model = ModelArrays.from_form(kind, model_meta, arrays).check()
        if self.model.n_features != encoder.n_features:
            raise InputError(
                f"model expects {self.model.n_features} features but the "
                f"{encoder.name} encoder of {space.name} makes {encoder.n_features}"
            )
        self.space = space
        self.encoder = encoder
        self.info = dict(info)
        g = np.zeros((0, space.genome_length), np.int32) if train_genomes is None \
            else np.ascontiguousarray(train_genomes, dtype=np.int32)
        self.train_genomes = g
        self.measured_genomes = np.zeros((0, space.genome_length), np.int32) \
            if measured_genomes is None else np.ascontiguousarray(measured_genomes, np.int32)
        c = self.info.get("constant_output_ms")
        if c is not None and (isinstance(c, bool) or not isinstance(c, (int, float))
                              or not math.isfinite(c) or c <= 0):
            raise InputError(f"constant_output_ms must be a positive number of ms, got {c!r}")
        self.constant_output_ms: float | None = None if c is None else float(c)
        pruned = self.info.get("pruned", False)
        if not isinstance(pruned, bool):
            raise InputError(f"pruned must be true or false, got {pruned!r}")
        self.pruned = pruned
        self._predictor: Any = None
        self.compile_error: str | None = None

    # ------------------------------------------------------------------ training
    @classmethod
    def fit(cls, space: SearchSpace | str, genomes: Any, latency_ms: Any,
            encoding: str = "fcc", model: str = "auto", seed: int | None = 0,
            encoding_params: dict[str, Any] | None = None,
            model_params: dict[str, Any] | None = None, target: str | None = None,
            device: str | None = None, column: str | None = None) -> Surrogate:
        """Train a surrogate.

        Parameters
        ----------
        space : SearchSpace or str
        genomes : array ``[N, G]``
        latency_ms : array ``[N]``
            Measured latencies; every value must be finite and positive.
        encoding : str
            Encoder name (:data:`esm.surrogate.encoders.ENCODERS`); ``fcc`` by default.
        model : str
            Regressor name (:func:`esm.surrogate.models.make_regressor`) or ``auto``.
        seed : int
            Seed of every random choice (folds, forests, networks).
        encoding_params, model_params : dict
            Passed to the encoder and the regressor.
        target : {"log", "identity"} or None
            Target transform; None: the regressor's default.
        device : str or None
            Device spec for the ``roofline``/``fcc`` encoders unless ``encoding_params``
            names one; with ``column`` given, guessed from it.
        column : str or None
            Name of the measured column (recorded in the file).
        """
        from esm.surrogate.encoders import device_from_column
        from esm.surrogate.models import make_regressor

        sp = _space(space)
        g = sp.validate(genomes)
        y = np.asarray(latency_ms, dtype=np.float64).ravel()
        if y.shape[0] != g.shape[0]:
            raise InputError(f"{g.shape[0]} genomes but {y.shape[0]} latencies")
        if g.shape[0] < 2:
            raise InputError("need at least 2 training rows")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InputError("latencies must be finite and positive")
        eparams = dict(encoding_params or {})
        if encoding in ("roofline", "fcc"):
            guess_dev, guess_batch = device_from_column(column) if column else (None, 1)
            eparams.setdefault("device", device or guess_dev)
            eparams.setdefault("batch", guess_batch)
        if encoding == "lut" and model == "auto":
            model = "lut"
        enc = get_encoder(encoding, sp, **eparams)
        X = enc.transform(g)
        mparams = dict(model_params or {})
        if model == "auto" and "column_sets" not in mparams:
            mparams["column_sets"] = default_column_sets(enc)
        if target is not None:
            mparams["target"] = target
        if model == "gcn" and "graph" not in mparams:
            if encoding not in ("onehot", "lut"):
                raise InputError("model 'gcn' reads the onehot encoding (--encoding onehot)")
            from esm.surrogate.gcn import graph_for_space

            mparams["graph"] = graph_for_space(sp)
        est = make_regressor(model, seed=seed, **mparams)
        t0 = time.perf_counter()
        est.fit(X, y)
        fit_seconds = time.perf_counter() - t0
        model_form = est.export()
        shown = {k: ("<cell graph>" if k == "graph" and v is not None else v)
                 for k, v in est.get_params(deep=False).items()}
        model_info: dict[str, Any] = {"name": model, "class": type(est).__name__,
                                      "params": _plain_params(shown)}
        if hasattr(est, "chosen_"):
            model_info["chosen"] = est.chosen_
            model_info["cv_mape"] = est.cv_scores_
        info = {
            "model": model_info,
            "target": {"transform": model_form.target, "column": column, "device": device
                       or eparams.get("device"), "unit": "ms"},
            "training": {"n": len(y), "fingerprint": fingerprint(g, y), "seed": seed,
                         "fit_seconds": fit_seconds},
            "metrics": {},
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        sur = cls(sp, enc, model_form.kind, model_form.form_meta(), model_form.arrays, info,
                  train_genomes=sp.canonical(g))
        from esm.surrogate.metrics import evaluate

        sur.info["metrics"]["train"] = evaluate(y, sur.predict(g))
        return sur

    # ------------------------------------------------------------------ prediction
    @property
    def kind(self) -> str:
        """Family of the regressor's array form (``model.kind``)."""
        return self.model.kind

    @property
    def model_meta(self) -> dict[str, Any]:
        """The form's meta with its ``target``, as the model file stores it."""
        return self.model.form_meta()

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The form's arrays (``model.arrays``)."""
        return self.model.arrays

    def features(self, genomes: Any) -> np.ndarray:
        """Encoded features ``[N, F]`` of ``genomes``."""
        return self.encoder.transform(genomes)

    def compile(self) -> Any:
        """The compiled predictor (:class:`esm.predictor.Predictor`), built once; None when
        the compiled core cannot evaluate this model form (then the NumPy reference is used,
        and ``compile_error`` says why)."""
        if self._predictor is None and self.compile_error is None:
            from esm.predictor import compile as compile_predictor

            try:
                self._predictor = compile_predictor(self)
            except InputError as err:
                self.compile_error = str(err)
        return self._predictor

    def predict_features(self, X: Any) -> np.ndarray:
        """Latencies (ms) from already encoded features (compiled model; features carry no
        genome, so neither :attr:`constant_output_ms` nor :attr:`pruned` applies)."""
        p = self.compile()
        if p is None:
            return reference.predict(self.model, X)
        return p.predict_features(X)

    def predict(self, genomes: Any, threads: int = 0, chunk: int = 65536,
                device: str = "cpu") -> Any:
        """Predicted latency in ms of every genome ``[N, G]`` (or one genome ``[G]``).

        Runs the compiled pipeline (:mod:`esm.predictor`): costs, features and model in C++,
        ``threads`` workers (0 = all cores), pieces of ``chunk`` rows; ``device="cuda"`` runs
        the model on the GPU (linear and tree families).
        """
        p = self.compile()
        if p is None:
            if device != "cpu":
                raise InputError(f"cannot run on {device!r}: {self.compile_error}")
            return self.predict_reference(genomes)
        return p.predict(genomes, threads=threads, chunk=chunk, device=device)

    def predict_stream(self, chunks: Any, threads: int = 0, chunk: int = 65536,
                       device: str = "cpu") -> Any:
        """Predict an iterable of genome batches lazily (one result per batch)."""
        for batch in chunks:
            yield self.predict(batch, threads=threads, chunk=chunk, device=device)

    def predict_reference(self, genomes: Any) -> np.ndarray:
        """The NumPy reference path (Python encoder + :func:`esm.predictor.reference.predict`)."""
        g = self.space.validate(genomes)
        if len(g) == 0:
            return np.zeros(0)
        out = reference.predict(self.model,
                                self.encoder.transform(self.space.pruned(g) if self.pruned else g))
        if self.constant_output_ms is not None:
            out[self.space.constant_output(g)] = self.constant_output_ms
        return out

    def evaluate(self, genomes: Any, latency_ms: Any) -> dict[str, float]:
        """Metrics (:func:`esm.surrogate.metrics.evaluate`) on the given rows."""
        from esm.surrogate.metrics import evaluate

        return evaluate(latency_ms, self.predict(genomes))

    def trained_on(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N]``: which genomes (compared in canonical form) were training rows."""
        return self._seen(genomes, self.train_genomes)

    def measured_on(self, genomes: Any) -> np.ndarray:
        """Boolean ``[N]``: which genomes the build measured on the target device (training
        rows and :attr:`measured_genomes`); an honest evaluation scores none of them."""
        return self._seen(genomes, np.concatenate([self.train_genomes,
                                                   self.measured_genomes]))

    def _seen(self, genomes: Any, known: np.ndarray) -> np.ndarray:
        g = self.space.canonical(genomes)
        if len(known) == 0 or len(g) == 0:
            return np.zeros(len(g), dtype=bool)
        seen = {row.astype(np.int32).tobytes() for row in self.space.canonical(known)}
        return np.fromiter((row.astype(np.int32).tobytes() in seen for row in g), dtype=bool,
                           count=len(g))

    def check_space(self, space: SearchSpace | str) -> None:
        """Raise InputError unless ``space`` (a space, a name or a spec file) is the space
        this surrogate was trained for."""
        if isinstance(space, str) and space != self.space.name:
            from esm import spaces

            if spaces.builtin_spec(space) is None and space not in spaces.names():
                space = spaces.get(space)
        name = space.name if isinstance(space, SearchSpace) else str(space)
        if name != self.space.name:
            raise InputError(f"this model is for space {self.space.name!r}, not {name!r}")
        if isinstance(space, SearchSpace) and (
                space.genome_length != self.space.genome_length
                or not np.array_equal(space.config, self.space.config)):
            raise InputError(
                f"this model is for {self.space!r}, not {space!r} (different parameters)")

    # ------------------------------------------------------------------ files
    def to_meta(self) -> dict[str, Any]:
        """The JSON metadata of the file."""
        return {
            "space": _space_meta(self.space),
            "encoding": self.encoder.to_dict(),
            "n_features": self.encoder.n_features,
            "model_form": {"kind": self.kind, "meta": self.model_meta},
            **self.info,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the surrogate to one file (see :mod:`esm.surrogate.modelfile`)."""
        arrays = {f"model/{k}": v for k, v in self.arrays.items()}
        arrays["train_genomes"] = self.train_genomes
        if len(self.measured_genomes):
            arrays["measured_genomes"] = self.measured_genomes
        modelfile.write(path, self.to_meta(), arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Surrogate:
        """Load and verify a file written by :meth:`save`."""
        meta, arrays, _ = modelfile.read(path)
        try:
            sp_meta = meta["space"]
            params = dict(sp_meta.get("params", {}))
            if isinstance(sp_meta.get("spec"), dict):  # the spec it was made with
                params.pop("spec", None)
                params["spec"] = sp_meta["spec"]
            sp = _space(str(sp_meta["name"]), params)
            if sp.genome_length != int(sp_meta["genome_length"]) or \
                    sp.choices.tolist() != list(sp_meta.get("choices", sp.choices.tolist())):
                raise InputError(f"{path}: the model's {sp.name} space differs from this esm's")
            enc = encoder_from_dict(meta["encoding"], sp)
            form = meta["model_form"]
            model_arrays = {k[len("model/"):]: v for k, v in arrays.items()
                            if k.startswith("model/")}
            info = {k: v for k, v in meta.items()
                    if k not in ("space", "encoding", "n_features", "model_form")}
            return cls(sp, enc, str(form["kind"]), dict(form["meta"]), model_arrays, info,
                       train_genomes=arrays.get("train_genomes"),
                       measured_genomes=arrays.get("measured_genomes"))
        except (KeyError, TypeError) as err:
            raise InputError(f"{path}: incomplete model metadata ({err})") from None

    # ------------------------------------------------------------------ description
    @property
    def fingerprint(self) -> str:
        return str(self.info.get("training", {}).get("fingerprint", ""))

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.info.get("metrics", {}))

    def __repr__(self) -> str:
        chosen = self.info.get("model", {}).get("chosen") or self.info.get("model", {}).get(
            "name")
        return (f"Surrogate(space={self.space.name!r}, encoding={self.encoder.name!r}, "
                f"model={chosen!r}, form={self.kind!r}, features={self.encoder.n_features})")


def default_column_sets(enc: Encoder) -> list[tuple[str, list[int] | None]] | None:
    """Feature subsets that ``auto`` tries with every candidate: all columns, the compact
    ``stats`` + ``roofline`` block of a combined encoding, and the four cost totals; the
    smaller sets generalise better from few or noisy rows."""
    groups = enc.feature_groups
    compact = [i for g in ("stats", "roofline") for i in groups.get(g, [])]
    if len(groups) < 2 or not compact or len(compact) == enc.n_features:
        return None
    sets: list[tuple[str, list[int] | None]] = [("all", None), ("stats+roofline", compact)]
    if "stats" in groups:
        sets.append(("totals", groups["stats"][:4]))  # macs, params, activation/weight bytes
    return sets


def _space_meta(space: SearchSpace) -> dict[str, Any]:
    """What a model file records of its space: name, parameters, genome shape and, for a
    spec-defined space, the spec itself (the file loads without the spec file)."""
    meta = {"name": space.name, "params": _plain_params(space.params()),
            "genome_length": space.genome_length, "choices": space.choices.tolist()}
    spec = getattr(space, "spec", None)
    if isinstance(spec, dict):
        meta["params"].pop("spec", None)
        meta["spec"] = spec
    return meta


def _plain_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (tuple, list)):
            out[k] = [_plain_value(x) for x in v]
        else:
            out[k] = _plain_value(v)
    return out


def _plain_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [_plain_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain_value(x) for k, x in v.items()}
    return repr(v)


def load(path: str | os.PathLike[str]) -> Surrogate:
    """Load a surrogate model file (NumPy and the compiled core only)."""
    return Surrogate.load(path)

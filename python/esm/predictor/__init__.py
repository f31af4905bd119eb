"""Compiled predictors: genomes -> costs -> features -> model in C++, chunked and threaded.

``compile(surrogate)`` returns a :class:`Predictor`. Its :meth:`Predictor.predict` validates the
genomes and runs the whole pipeline in the compiled core: per piece of at most ``chunk`` rows
the costs (only when the encoding needs them), the features (a compiled twin of the Python
encoder, checked against it when the predictor is built) and the regressor, on ``threads``
worker threads; extra memory is bounded by ``threads * chunk * (F + 4 S)`` values. A linear
model over one-hot features (the LUT family) is evaluated from per-gene tables without a
feature matrix; so is a tree ensemble over one-hot features, whose splits are decided in advance
for the values 0 and 1 (each genome becomes the list of its hot columns). Small batches run on
the calling thread (a thread start costs more than a few hundred rows). When an encoder has no
compiled twin, the Python encoder computes the features chunk by chunk and the compiled model
evaluates them.

A linear model with the identity target over an additive encoding (``onehot``, ``lut``,
``stats``, ``layerwise``, ``roofline``, ``fcc``: the default models) is folded into lookup
tables over a few genes per slot (:mod:`esm.predictor.fold`): each prediction is a few dozen
table lookups, with no costs and no features. The fold is checked against the unfolded model
on random genomes when the predictor is built (relative difference <= 1e-9) and is used only
when it passes; :attr:`Predictor.fold_reason` says why a model is not folded. On a space of at
most 65,536 genomes (nb201) every model, of any family, becomes one table of the whole space's
predictions (:attr:`Predictor.whole_space`): a single lookup per genome. The table costs about
one prediction of every genome, so it is built once the predictor has been asked for as many
genomes as the space holds (at most twice the work of the better choice in hindsight, and
nothing extra for a few predictions).

Results equal the regressor's own predict: 1e-6 relative in float64 for every family (in
practice ~1e-12); XGBoost sums its trees in float32, so it agrees with its own predict to about
1e-5 relative while the compiled ensemble sums in float64.

Empty batches give an empty result. Genomes of a wrong width, out-of-range genes and
non-integer genomes raise :class:`esm.errors.InputError`; integer arrays of any dtype or layout
are converted (never reinterpreted).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.predictor.model import KINDS, ModelArrays

__all__ = ["KINDS", "ModelArrays", "Predictor", "compile", "model_arrays"]


class Predictor:
    """A compiled surrogate: genomes (or features) in, latencies in ms out.

    Parameters
    ----------
    model : ModelArrays
        The regressor as plain arrays.
    encoder : esm.surrogate encoder, optional
        Turns genomes into the model's features. Without it only :meth:`predict_features`
        works.
    verify : bool
        Check the compiled encoder against ``encoder.transform`` on a random sample before
        using it (default True); a mismatch falls back to the Python encoder.
    constant_output_ms : float, optional
        The latency :meth:`predict` gives every network whose output does not depend on its
        input (:meth:`~esm.spaces.SearchSpace.constant_output`), on a device that folds them
        (:attr:`esm.surrogate.Surrogate.constant_output_ms`).
    pruned : bool
        Predict every genome from its :meth:`~esm.spaces.SearchSpace.pruned` form, on a
        device that prunes dead operations (:attr:`esm.surrogate.Surrogate.pruned`).
    """

    def __init__(self, model: ModelArrays, encoder: Any | None = None, verify: bool = True,
                 constant_output_ms: float | None = None, pruned: bool = False) -> None:
        from esm.predictor import fold, plan

        self.model = model
        self.encoder = encoder
        self.space = None if encoder is None else encoder.space
        self.constant_output_ms = constant_output_ms
        self.pruned = bool(pruned)
        self._compiled = model.compile()
        self._fused: Any | None = None
        #: Why the fused C++ pipeline is not used (None when it is).
        self.fused_reason: str | None = "no encoder"
        self._gpu: Any | None = None
        self._folded: Any | None = None
        self._table: Any | None = None
        #: Genomes still to be asked of :meth:`predict` before the table of the whole space is
        #: built (None: none to build: the space is too large, or it was tried).
        self._table_after: int | None = None
        #: Why the model is not folded into lookup tables (None when it is).
        self.fold_reason: str | None = "no encoder"
        if encoder is not None:
            if encoder.n_features != model.n_features:
                raise InputError(
                    f"the encoder makes {encoder.n_features} features, the model expects "
                    f"{model.n_features}"
                )
            try:
                if verify:
                    plan.verify_plan(encoder)
                self._fused = plan.fused(encoder, self._compiled)
                self.fused_reason = None
            except plan.PlanError as err:
                self.fused_reason = str(err)
            self._try_fold()
            size = encoder.space.size
            self._table_after = size if size <= fold.WHOLE_SPACE_MAX else None

    def _try_fold(self) -> None:
        from esm.predictor import fold

        try:
            self._folded = fold.build_fold(self.model, self.encoder).compile()
            self.fold_reason = None
        except fold.FoldError as err:
            self._folded = None
            self.fold_reason = str(err)

    def _whole_space_due(self, n: int) -> bool:
        """Count ``n`` genomes asked for, and build the table of the whole space once they
        reach its size; whether :meth:`predict` looks them up in it."""
        if self._table is None and self._table_after is not None:
            self._table_after -= n
            if self._table_after <= 0:
                self._table_after = None
                self._build_table()
        return self._table is not None

    def _build_table(self) -> None:
        from esm.predictor import fold

        space: Any = self.space
        try:
            self._table = fold.whole_space(space, self._predict_cpu).compile()
            self.fold_reason = None
        except InputError:
            pass  # a model that gives no table (a FoldError) keeps its own path

    @property
    def whole_space(self) -> bool:
        """Whether :meth:`predict` looks every genome up in one table of the whole space's
        predictions (:func:`esm.predictor.fold.whole_space`; built once as many genomes as
        the space holds have been asked for)."""
        return self._table is not None

    @property
    def folded(self) -> bool:
        """Whether genomes are predicted from folded lookup tables (per-slot tables of a
        linear model, or the table of the whole space)."""
        return self._folded is not None or self._table is not None

    @property
    def fused(self) -> bool:
        """Whether genomes go through the fused C++ pipeline."""
        return self._fused is not None

    @property
    def kind(self) -> str:
        return self.model.kind

    # ------------------------------------------------------------------ CPU
    def _genomes(self, genomes: Any) -> np.ndarray:
        if self.space is None:
            raise InputError("this predictor has no encoder; use predict_features")
        if isinstance(genomes, np.ndarray) and genomes.ndim == 2 and genomes.dtype.kind in "iu":
            return genomes  # validated (and converted) by the compiled core
        return self.space.validate(genomes)

    def predict(
        self, genomes: Any, threads: int = 0, chunk: int = 65536, device: str = "cpu"
    ) -> Any:
        """Latencies (ms) of ``genomes`` ``[N, G]``.

        Parameters
        ----------
        genomes : array-like
            Integer genomes; a single genome ``[G]`` is one row. With ``device="cuda"`` a cupy
            array is accepted and the result is a cupy array.
        threads : int
            Worker threads (0 = all cores).
        chunk : int
            Rows per piece; bounds the extra memory.
        device : {"cpu", "cuda"}
            Where the model runs.
        """
        if device == "cuda":
            out = self._gpu_predictor().predict(self._pruned(genomes), threads=threads,
                                                chunk=chunk)
            return self._constant(genomes, out)
        if device != "cpu":
            raise InputError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if int(chunk) <= 0:
            raise InputError(f"chunk must be positive, got {chunk}")
        g = self._genomes(genomes)
        if self._whole_space_due(len(g)):  # pruned forms and folded outputs are in the table
            return self._run(self._table, g, threads, chunk)
        return self._predict_cpu(g, threads, chunk)

    def _run(self, run: Any, g: np.ndarray, threads: int, chunk: int) -> np.ndarray:
        """``run.predict`` (folded tables or the fused pipeline) with its errors as
        :class:`InputError`."""
        try:
            return np.asarray(run.predict(g, int(threads), int(chunk)))
        except ValueError as err:
            raise InputError(f"{self.space.name}: {err}") from None  # type: ignore[union-attr]

    def _predict_cpu(self, genomes: np.ndarray, threads: int = 0, chunk: int = 65536
                     ) -> np.ndarray:
        """Latencies of ``genomes`` by the folded tables of a linear model, the fused
        pipeline or the Python encoder (not by a table of the whole space)."""
        g = self._pruned(genomes)
        if self._folded is not None or self._fused is not None:
            run: Any = self._folded if self._folded is not None else self._fused
            return self._constant(g, self._run(run, g, threads, chunk))
        g = self.space.validate(g)  # type: ignore[union-attr]
        out = np.empty(len(g))
        for b in range(0, len(g), int(chunk)):
            X = self.encoder.transform(g[b : b + int(chunk)])  # type: ignore[union-attr]
            out[b : b + int(chunk)] = self.predict_features(X, threads, chunk)
        return self._constant(g, out)

    def _pruned(self, genomes: Any) -> Any:
        """``genomes`` in the form the model predicts: :meth:`pruned
        <esm.spaces.SearchSpace.pruned>` when :attr:`pruned` (a cupy array stays one)."""
        if not self.pruned or self.space is None:
            return genomes
        pruned = self.space.pruned(_host(genomes))
        if isinstance(genomes, np.ndarray) or not hasattr(genomes, "get"):
            return pruned
        import cupy

        return cupy.asarray(pruned)

    def _constant(self, genomes: Any, out: Any) -> Any:
        """``out`` with the constant-output networks at :attr:`constant_output_ms`."""
        if self.constant_output_ms is None or self.space is None:
            return out
        mask = self.space.constant_output(_host(genomes))
        if mask.any():
            if isinstance(out, np.ndarray):
                out[mask] = self.constant_output_ms
            else:
                import cupy

                out[cupy.asarray(mask)] = self.constant_output_ms
        return out

    def predict_features(self, X: Any, threads: int = 0, chunk: int = 65536) -> np.ndarray:
        """Latencies (ms) of raw feature rows ``X [N, F]`` (float64; other numeric dtypes and
        strided arrays are converted)."""
        try:
            return np.asarray(self._compiled.predict(X, int(threads), int(chunk)))
        except ValueError as err:
            raise InputError(str(err)) from None

    def predict_stream(
        self,
        chunks: Iterable[Any],
        threads: int = 0,
        chunk: int = 65536,
        device: str = "cpu",
    ) -> Iterator[Any]:
        """Predict an iterable of genome batches lazily: one result array per input batch.

        Memory stays bounded by one batch at a time, so inputs larger than memory (a file read
        piece by piece, a generator of candidates) can be scored.
        """
        for batch in chunks:
            yield self.predict(batch, threads=threads, chunk=chunk, device=device)

    def encode(self, genomes: Any, threads: int = 0) -> np.ndarray:
        """Features of ``genomes`` from the compiled encoder (or the Python one)."""
        if self._fused is not None:
            try:
                return np.asarray(self._fused.encode(self._genomes(genomes), int(threads)))
            except ValueError as err:
                raise InputError(str(err)) from None
        if self.encoder is None:
            raise InputError("this predictor has no encoder")
        return np.asarray(self.encoder.transform(genomes))

    # ------------------------------------------------------------------ GPU
    def _gpu_predictor(self) -> Any:
        if self._gpu is None:
            from esm.predictor.gpu import GpuPredictor

            self._gpu = GpuPredictor(self)
        return self._gpu

    def __repr__(self) -> str:
        if self.whole_space:
            path = "one table of the whole space"
        else:
            path = "folded tables" if self.folded else (
                "fused C++" if self.fused else f"Python encoder ({self.fused_reason})")
        return f"Predictor(kind={self.kind!r}, features={self.model.n_features}, {path})"


def _host(genomes: Any) -> Any:
    """``genomes`` on the host: a cupy array copied to NumPy, anything else as it is."""
    return genomes if isinstance(genomes, np.ndarray) or not hasattr(genomes, "get") \
        else genomes.get()


def model_arrays(surrogate: Any) -> ModelArrays:
    """The :class:`ModelArrays` of an :class:`esm.surrogate.Surrogate` (its ``model``), or of
    any object with a ``kind``, a ``model_meta`` (holding the ``target``) and ``arrays``."""
    model = getattr(surrogate, "model", None)
    if isinstance(model, ModelArrays):
        return model
    for attr in ("kind", "model_meta", "arrays"):
        if not hasattr(surrogate, attr):
            raise InputError(f"cannot compile a {type(surrogate).__name__}: no {attr!r}")
    arrays = {k: np.asarray(v) for k, v in surrogate.arrays.items()}
    return ModelArrays.from_form(str(surrogate.kind), dict(surrogate.model_meta), arrays)


def compile(surrogate: Any, verify: bool = True) -> Predictor:
    """Compile a trained :class:`esm.surrogate.Surrogate` into a :class:`Predictor`."""
    return Predictor(model_arrays(surrogate), getattr(surrogate, "encoder", None), verify=verify,
                     constant_output_ms=getattr(surrogate, "constant_output_ms", None),
                     pruned=bool(getattr(surrogate, "pruned", False)))

"""The model file a build delivers: one model, one number.

A build (:func:`esm.build.build`) ends with a *step model*: the relative-error robust ridge on
cost features that the loop refits at every step (:class:`esm.build._RidgeSurrogate`).
:func:`finalize` turns the result into the file a user receives:

1. **Candidates.** The step model itself, as a normal esm model file
   (:func:`step_surrogate`: an ``fcc`` encoder whose parts span the step model's features
   and a ``linear`` model; it loads and predicts with NumPy and the compiled core), and a
   full surrogate (``encoding``/``model``, by default ``fcc``/``auto``) fitted on the same
   training labels. ``choice="step"`` or ``"surrogate"`` keeps one of them only.
2. **Choice.** The candidate with the lower MAPE on the validation networks is saved (ties
   go to the step model), so the file is never worse on validation than the step model it
   replaces. The choice is stated in the file and the result (``selection``): on a device
   the validation networks both choose and state the error, which makes the figure
   optimistic by a little (a choice between two; ``esm check`` measures it independently);
   on a dataset file the error is stated on every unmeasured row, which the choice never
   saw. Without a validation set the step model is saved. (Choosing by cross-validation on
   the training rows instead would refit the full surrogate five times: about five minutes
   for ``fcc``/``auto`` on 300 rows on a 2-core machine.)
3. **Refit** (``refit``, on by default). Once the validation networks have chosen the kind,
   it is refitted on every measured network (training and validation) with the same
   settings (the step model keeps the features it chose; a full surrogate runs its own
   choice again on the larger set): a quarter of the networks of a 100-network build would
   otherwise only ever have stated an error. ``result["model"]["trained_on"]`` says on how
   many networks the saved model was trained.
4. **Stated error.** ``metrics["validation"]``: MAPE, ``ape95``, ``acc10`` and the rest on
   the validation set (device) or the unmeasured rows (dataset). On a device the stated
   figure is that of the chosen kind fitted on the training networks alone, measured on the
   validation networks before the refit trains on them (``"model"`` says so): never an
   in-sample figure, and about the refitted model's error or a little above it (it had fewer
   networks; ``benchmarks/noprior.py`` compares it with the error on every unmeasured row).
   On a dataset file the saved (refitted) model is scored on every row the build did not
   measure. A transfer model built with a ``posterior`` estimate (``esm build --prior`` on a
   device) states the build's figure instead: the holdout's errors pooled with the model's
   posterior expected error over the unmeasured networks (``mape_holdout`` keeps the
   holdout's alone), which a holdout of 6-10 networks alone left too noisy
   (``benchmarks/results/transfer.md``, ``trust``). Where the build corrected drift, the
   same model kind is refitted on the raw latencies of the training networks and validated
   on them, and both figures are stated (``result["model"]["validation"]``), with which one
   the model used.
5. **Conditions.** The file records how its networks were measured (device, batch, threads,
   settings), the reference network with its latency at the labels' speed, the validation
   networks (so that ``esm check`` never scores them; after a refit they are training
   networks too), the drift decision, the warm-up and the measurement noise.

The result's headline figures (``mape``, ``predictions``) then are those of the saved model;
the step model's own figures stay in ``result["step_model"]``.
"""

from __future__ import annotations

import math
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.prior import n_devices
from esm.sampling import feature_sets, stages

if TYPE_CHECKING:
    from esm.oracles import Oracle
    from esm.spaces import SearchSpace
    from esm.surrogate import Surrogate

__all__ = ["CHOICES", "finalize", "step_surrogate"]

#: What :func:`finalize` may save: the better of both by validation, or one of them.
CHOICES = ("best", "step", "surrogate")
_COST_FIELDS = ["macs", "params", "activation_bytes"]  # sampling.cost_features' per-slot order


def step_surrogate(space: SearchSpace, step: Any, genomes: np.ndarray, y: np.ndarray, *,
                   seed: int | None = 0, column: str | None = None,
                   device: str | None = None) -> Surrogate:
    """The build's step model (a fitted :class:`esm.build._RidgeSurrogate`) as a
    :class:`esm.surrogate.Surrogate` that predicts the same latencies.

    The step model is linear in :func:`esm.sampling.features`: per-slot (or per-stage) MACs,
    parameters and activation bytes in millions, their totals, and on some feature sets the
    one-hot genes or the counts of each choice. All of these are linear in the columns of an
    ``fcc`` encoder with parts ``stats`` (the totals), ``layerwise`` (per-slot MACs, params,
    activation bytes; a stage's sum ties its slots' coefficients), ``onehot`` and
    ``stagechoice`` (the split costs of the ``stages+choices`` set, in the same order). The
    step model's one-hot genes are those of the canonical genome, the encoder's those of the
    genome with inactive genes zeroed: an inactive gene reads as choice 0 for the step model
    and as no choice for the encoder, which moves each gene's choice-0 weight into the
    intercept, and a choice that canonical form merges into another (ofa-resnet50's ``w0``)
    takes the weight of the choice it is merged into (:func:`_canonical_choices`). The
    conversion is checked on 256 sampled genomes; ``genomes``/``y`` are the training rows
    (recorded in the file).
    """
    from esm.surrogate import Surrogate
    from esm.surrogate.encoders import get_encoder
    from esm.surrogate.metrics import evaluate
    from esm.surrogate.surrogate import fingerprint

    fs, m = step.feature_set_, step.model_
    if fs not in feature_sets(space):
        raise InputError(f"feature set {fs!r} does not apply to {space.name!r}")
    w = m.coef_ / m.scale_  # prediction = features @ w + c
    c = float(m.y_mean_ - m.mean_ @ w)
    genes = fs in ("costs+genes", "costs+counts")
    split = fs == "stages+choices"
    parts = ["stats", "layerwise", *(["onehot"] if genes else []),
             *(["stagechoice"] if split else [])]
    enc = get_encoder("fcc", space, parts=parts, layer_fields=_COST_FIELDS)
    groups = enc.feature_groups
    coef = np.zeros(enc.n_features)
    scale = np.ones(enc.n_features)
    n_slots = len(space.slot_names)
    st = stages(space) if fs in ("stages", "stages+choices") else np.arange(n_slots)
    assert st is not None
    n_cost = 3 * (int(st.max()) + 1) + 3
    per = w[:n_cost - 3].reshape(-1, 3)[st]  # [slots, 3] weight per slot and field
    lw = np.asarray(groups["layerwise"]).reshape(n_slots, 3)
    coef[lw], scale[lw] = per, 1e6
    tot = np.asarray(groups["stats"][:3])  # macs, params, activation_bytes
    coef[tot], scale[tot] = w[n_cost - 3:n_cost], 1e6
    if split:  # the stagechoice columns in the same order, in millions
        sc = np.asarray(groups["stagechoice"])
        coef[sc], scale[sc] = w[n_cost:], 1e6
    if genes:
        ch = np.asarray(space.choices, np.int64)
        if fs == "costs+genes":
            wg = np.split(w[n_cost:], np.cumsum(ch)[:-1])
        else:  # a count weight applies to that choice on every gene
            wg = [w[n_cost:n_cost + int(k)] for k in ch]
        oh = np.asarray(groups["onehot"])
        start = 0
        for wj, mj in zip(wg, _canonical_choices(space, enc), strict=True):
            coef[oh[start:start + wj.size]] = wj[mj] - wj[0]
            c += float(wj[0])
            start += wj.size
    arrays = {"x_mean": np.zeros(enc.n_features), "x_scale": scale, "coef": coef,
              "intercept": np.asarray([c])}
    g = space.validate(genomes)
    yv = np.asarray(y, np.float64)
    from esm import __version__

    info: dict[str, Any] = {
        "model": {"name": "step", "class": "RidgeModel",
                  "params": {"feature_set": fs, "alpha": float(m.alpha_),
                             "relative": bool(m.relative), "robust": int(m.robust)}},
        "target": {"transform": "identity", "column": column, "device": device, "unit": "ms"},
        "training": {"n": int(yv.size), "fingerprint": fingerprint(g, yv), "seed": seed},
        "metrics": {},
        "versions": {"esm": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    sur = Surrogate(space, enc, "linear", {"target": "identity"}, arrays, info,
                    train_genomes=space.canonical(g))
    probe = space.sample(256, seed=20240)
    a, b = step.predict(probe), sur.predict_reference(probe)
    if not np.allclose(b, a, rtol=1e-9, atol=1e-12 * float(np.abs(a).max())):
        raise InputError(f"the step model on {fs!r} features of {space.name!r} has no exact "
                         f"esm model form (max difference {float(np.abs(b - a).max()):.3g})")
    sur.info["metrics"]["train"] = evaluate(yv, sur.predict(g))
    return sur


def _canonical_choices(space: SearchSpace, enc: Any) -> list[np.ndarray]:
    """For every gene, the choice each of its choices reads as in canonical form where the
    gene is active (its own index, unless canonical form merges equivalent choices)."""
    base = space.sample(32, seed=7)
    groups = enc.feature_groups["onehot"]
    out: list[np.ndarray] = []
    start = 0
    for j, k in enumerate(np.asarray(space.choices, np.int64)):
        cols = np.asarray(groups[start:start + k])
        start += int(k)
        m = np.arange(k)
        for v in range(int(k)):
            g = base.copy()
            g[:, j] = v
            active = enc.transform(g)[:, cols].sum(axis=1) > 0
            seen = np.unique(space.canonical(g)[active, j])
            if seen.size == 1:
                m[v] = int(seen[0])
        out.append(m)
    return out


def _stated(sur: Surrogate, genomes: np.ndarray, y: np.ndarray, on: str) -> dict[str, Any]:
    """Every metric of ``sur`` on these rows, with ``ape95`` and where they come from."""
    from esm.surrogate.metrics import evaluate

    pred = np.asarray(sur.predict(genomes), np.float64)
    ape = 100.0 * np.abs(pred / y - 1.0)
    return {**evaluate(y, pred), "ape95": float(np.percentile(ape, 95)),
            "median_ratio": float(np.median(pred / y)), "on": on}


def finalize(result: dict[str, Any], step_model: Any, oracle: Oracle, *,
             choice: str = "best", encoding: str = "fcc", model: str = "auto",
             seed: int = 0, say: Any = None, refit: bool = True) -> Surrogate:
    """The model file of a finished build (see the module docs); updates ``result``.

    Parameters
    ----------
    result, step_model
        What :func:`esm.build.build` returned (and the oracle it ran on).
    choice : {"best", "step", "surrogate"}
        Save the better of the step model and the full surrogate by validation MAPE, or
        one of them.
    encoding, model, seed
        The full surrogate's encoding, regressor and seed.
    refit : bool
        Refit the chosen kind on every measured network (training and validation) once the
        validation networks have chosen it and stated its error (see the module docs).

    Returns
    -------
    Surrogate
        The model to save; ``result`` gains ``model`` (kind, selection, stated metrics,
        raw and corrected validation MAPE) and ``step_model``, and its ``mape`` and
        ``predictions`` become the saved model's.
    """
    from esm.build import surrogate_available

    if choice not in CHOICES:
        raise InputError(f"unknown final model choice {choice!r}; known: {', '.join(CHOICES)}")
    if not surrogate_available():
        raise InputError("writing a model file needs esm.surrogate (pip install esm-nas[train])")
    say = say or (lambda _m: None)
    space, genomes = oracle.space, oracle.pool.genomes
    meas = result["measured"]
    tr = np.asarray(meas["train"], np.int64)
    va = np.asarray(meas["validation"], np.int64)
    y_tr = np.asarray(meas["y_train"], np.float64)
    y_va = np.asarray(meas["y_validation"], np.float64)
    full_name = f"{encoding}/{model}"

    def fit(kind: str, y: np.ndarray, rows: np.ndarray = tr) -> Surrogate:
        """A candidate of this kind fitted on the networks ``rows`` (by default the training
        networks) with labels ``y``."""
        from esm.surrogate import Surrogate

        g = genomes[rows]
        if kind == "step" and step_model.kind == "transfer":
            return step_model.prior.fit(g, y).to_surrogate(g)
        if kind == "step" and step_model.kind != "surrogate":
            # the refit keeps the features the step model chose: the chosen model, more rows
            opts = {} if rows is tr else {"sets": [step_model.feature_set_]}
            return step_surrogate(space, type(step_model)(space, **opts).fit(g, y), g, y,
                                  seed=seed)
        if kind == "step":  # the loop's step models were full surrogates already
            return Surrogate.fit(space, g, y, encoding=step_model.encoding,
                                 model=step_model.model, seed=step_model.seed)
        return Surrogate.fit(space, g, y, encoding=encoding, model=model, seed=seed)

    t = time.monotonic()
    cands: dict[str, Surrogate] = {}
    why_not = None
    if choice in ("best", "step"):
        try:
            cands["step"] = (step_model.model_ if step_model.kind == "surrogate" else
                             step_model.fit_.to_surrogate(genomes[tr])
                             if step_model.kind == "transfer" else
                             step_surrogate(space, step_model, genomes[tr], y_tr, seed=seed))
        except InputError as err:
            if choice == "step":
                raise
            why_not = str(err)
    # (a transfer model without a validation set is kept: nothing could choose against it)
    if choice == "surrogate" or (choice == "best" and step_model.kind != "surrogate"
                                 and (va.size or step_model.kind != "transfer")):
        say(f"fitting the {full_name} surrogate on {tr.size} networks")
        cands[full_name] = fit(full_name, y_tr)
    result["seconds"]["train"] = result["seconds"].get("train", 0.0) + time.monotonic() - t

    scores = {k: float(100 * np.mean(np.abs(np.asarray(s.predict(genomes[va])) / y_va - 1)))
              for k, s in cands.items()} if va.size else {}
    selection = _choose(list(cands), scores, choice)
    if why_not:
        selection["step_model_left_out"] = why_not
    chosen = selection["chosen"]
    sur = cands[chosen]

    every = np.asarray(meas.get("all", np.concatenate([tr, va]).tolist()), np.int64)
    if oracle.truth is not None:  # a lookup: every row not measured
        eval_idx = oracle.unmeasured(np.concatenate([tr, va, every]))
        on, eval_y = "unmeasured rows", oracle.truth[eval_idx]
    else:
        on, eval_idx, eval_y = "validation set", va, y_va
    stated: dict[str, Any] | None = None
    if on == "validation set" and eval_idx.size:  # before a refit trains on them
        stated = _stated(sur, genomes[eval_idx], eval_y, on)
    trained = tr
    if refit and va.size:
        trained = np.concatenate([tr, va])
        say(f"refitting the chosen model ({chosen}) on all {trained.size} measured networks")
        t = time.monotonic()
        sur = fit(chosen, np.concatenate([y_tr, y_va]), trained)
        result["seconds"]["train"] += time.monotonic() - t
        if stated is not None:
            stated["model"] = (f"the same kind fitted on the {tr.size} training networks; "
                               f"this model is refitted on all {trained.size} measured")
    if stated is None and eval_idx.size:
        stated = _stated(sur, genomes[eval_idx], eval_y, on)
    if stated is None and chosen == "step" and step_model.kind == "transfer":  # no holdout
        on = "leave-one-out on the training networks"
        stated = _stated_loo(step_model.fit_.loo_rel_, on)
    if stated is not None and on != "unmeasured rows" and chosen == "step" \
            and str(result.get("config", {}).get("validation")).endswith("posterior") \
            and math.isfinite(result.get("mape_estimate", math.nan)):
        # the build's figure: the step model's posterior expected error over the unmeasured
        # networks, pooled with the holdout's errors (esm.build, validation "posterior")
        holdout = on == "validation set"
        stated["mape_holdout" if holdout else "mape_loo"] = stated["mape"]
        stated["mape"] = result["mape_estimate"]
        stated["on"] = "the posterior expected error over the unmeasured networks"
        if holdout:
            stated["on"] = f"{on}, pooled with {stated['on']}"
    if stated is not None:
        sur.info["metrics"]["validation"] = stated
    labels = _raw_and_corrected(result, chosen, stated, fit, genomes, va)
    if selection["on"] == "validation set":
        selection["note"] = ("chosen on the validation networks that also state its error "
                             "(slightly optimistic; esm check measures it independently)"
                             if on == "validation set" else
                             "chosen on the validation networks; the error is stated on the "
                             "unmeasured rows, which the choice never saw")
    _conditions(sur, result, oracle, selection, labels, space, genomes[va])
    sur.measured_genomes = _measured_elsewhere(space, genomes, trained, every, oracle)
    result["step_model"] = {"mape": result["mape"], "mape_estimate": result["mape_estimate"],
                            "predictions_on": result["predictions"]["on"]}
    if chosen != "step":
        kind = f"esm.surrogate {full_name}"
    elif step_model.kind == "surrogate":
        kind = "esm.surrogate (step model)"
    elif step_model.kind == "transfer":
        kind = (f"transfer model (prior of {n_devices(len(step_model.prior.columns))}, "
                "esm.transfer)")
    else:
        kind = f"step model (ridge on {sur.info['model']['params']['feature_set']} features)"
    result["model"] = {"chosen": chosen, "kind": kind, "selection": selection,
                       "validation": labels, "metrics": stated,
                       "trained_on": {"networks": int(trained.size),
                                      "refit": bool(trained.size > tr.size)}}
    result["model_kind"] = kind
    if stated is not None:
        result["mape"] = result["model_mape"] = stated["mape"]
        result["model_mape_on"] = stated["on"]
        pred = np.asarray(sur.predict(genomes[eval_idx[:5000]]), np.float64)
        result["predictions"] = {"on": on, "measured": eval_y[:5000].tolist(),
                                 "predicted": pred.tolist()}
    say(f"model: {kind}"
        + (f", MAPE {stated['mape']:.2f}% on the {stated['on']}" if stated else ""))
    return sur


def _stated_loo(rel: np.ndarray, on: str) -> dict[str, Any]:
    """The stated error of a transfer model without a holdout: its leave-one-out relative
    errors on the training networks (closed form, :class:`esm.transfer.TransferFit`)."""
    ape = 100.0 * np.asarray(rel, np.float64)
    return {"mape": float(ape.mean()), "ape95": float(np.percentile(ape, 95)),
            "acc10": float(100.0 * np.mean(ape <= 10.0)), "n": int(ape.size), "on": on}


def _measured_elsewhere(space: SearchSpace, genomes: np.ndarray, train: np.ndarray,
                        every: np.ndarray, oracle: Any) -> np.ndarray:
    """Canonical genomes of every network measured on the device besides the training
    rows (validation, failed, the drift reference): the file lists them so that evaluation
    (``esm evaluate``) never scores one."""
    rest = np.setdiff1d(every, train)
    out = [space.canonical(genomes[rest])] if rest.size else []
    ref = oracle.reference().get("arch") if hasattr(oracle, "reference") else None
    if ref:
        out.append(space.canonical(space.from_str(ref)[None, :]))
    if not out:
        return np.zeros((0, space.genome_length), np.int32)
    return np.ascontiguousarray(np.concatenate(out), np.int32)


def _choose(names: list[str], scores: dict[str, float], choice: str) -> dict[str, Any]:
    """Which candidate to save, and how it was chosen (see the module docs)."""
    sel: dict[str, Any]
    if len(names) == 1:
        sel = {"chosen": names[0], "on": "none", "rule": f"only candidate ({choice})"}
    elif scores:
        sel = {"chosen": min(names, key=lambda k: (scores[k], k != "step")),
               "on": "validation set", "rule": "lower validation MAPE (ties: step)"}
    else:
        sel = {"chosen": "step", "on": "none",
               "rule": "no validation set to choose on: the step model"}
    sel["candidates"] = {k: {"validation_mape": scores.get(k)} for k in names}
    return sel


def _raw_and_corrected(result: dict[str, Any], chosen: str, stated: dict[str, Any] | None,
                       fit: Any, genomes: np.ndarray, va: np.ndarray) -> dict[str, Any]:
    """Validation MAPE on the labels the model used and, where drift was corrected, of the
    same kind fitted and validated on the raw latencies."""
    drift = result.get("drift") or {}
    used = "corrected" if drift.get("applied") else "raw"
    out: dict[str, Any] = {"used": used, used: None if stated is None else stated["mape"]}
    meas = result["measured"]
    if used == "corrected" and va.size and "y_train_raw" in meas:
        raw_model = fit(chosen, np.asarray(meas["y_train_raw"], np.float64))
        y = np.asarray(meas["y_validation_raw"], np.float64)
        out["raw"] = float(100 * np.mean(np.abs(np.asarray(raw_model.predict(genomes[va]))
                                                / y - 1)))
    elif used == "raw":
        out["corrected"] = out["raw"]  # nothing was corrected: the labels are the raw ones
    return out


def _conditions(sur: Surrogate, result: dict[str, Any], oracle: Any,
                selection: dict[str, Any], labels: dict[str, Any], space: SearchSpace,
                val_genomes: np.ndarray) -> None:
    """Record in the file how it was built and how to measure it again."""
    d = result["oracle"]
    if d["kind"] == "device":
        sur.info["target"]["measurement"] = {k: d[k] for k in ("device", "batch_size",
                                                               "threads", "settings")}
        sur.info["target"]["device"] = d["device"]
        ref = dict(oracle.reference())
        ref["applied"] = labels["used"] == "corrected"
        if ref.get("median_ms") is not None and math.isfinite(ref["median_ms"]):
            sur.info["target"]["drift_reference"] = ref
    elif d["kind"] == "csv":
        sur.info["target"]["column"] = d.get("column")
    sur.info["build"] = {
        "space": space.name, "strategy": result.get("strategy"),
        "samples_used": result.get("samples_used"), "selection": selection,
        "labels": labels, "drift": result.get("drift"), "noise": result.get("noise"),
        "warmup": result.get("warmup"),
        "validation_archs": [space.to_str(g) for g in val_genomes],
    }

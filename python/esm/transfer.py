"""Few-shot transfer: a new device's latency surrogate from a few measurements and a prior.

The model
---------
Latency is close to a sum of per-layer (per-operation) times, so on every device it is close
to a linear function of the cost and operation features of :func:`feature_encoder` (the
``fcc`` encoding's network totals, per-slot MACs / parameters / activation bytes and one-hot
genes; in milliseconds, not in log space: sums stay sums). A device is then a weight vector
``w``, and a prior of other devices (:mod:`esm.prior`) is a sample of such vectors: every
prior column is fitted once (relative-error ridge on all its rows) and normalised to mean
latency 1.

The new device's weights get a Gaussian prior ``w ~ N(s * wbar, s^2 * P)``: ``wbar`` is the
mean normalised prior device, ``s`` the device's speed (free), and

``P = scale * wbar wbar' + dev * Cov(prior devices) + sum_b lam_b * L_b L_b' / |b| + ...``

- ``dev``: the directions in which the prior devices differ from each other (a multi-task
  covariance learned from the prior columns);
- cost and operation blocks ``b`` that let the target leave the span of the prior, from
  coarse to fine: ``tot`` (network totals), ``cnt`` (how many genes take each operation, on
  spaces whose genes share one menu), ``stage`` (costs summed per stage), ``cc`` (costs
  summed per operation: an accelerator's efficiency differs by operation), ``slot``
  (per-slot costs), ``oh`` (one-hot genes). Each block is standardised, so ``lam_b`` is the
  variance (in squared relative latency) it may add. Coarse blocks start with more variance
  (:data:`DEFAULT_LAMBDA`).

Measurements have relative noise ``sigma`` (outliers are down-weighted by Huber weights from
the leave-one-out residuals). ``lam`` and ``sigma`` are fitted to the target's measurements
by maximising the marginal likelihood under a log-normal hyperprior around the defaults
(type-II MAP), so a target unlike every prior column turns the cost blocks up, and one like
them keeps them small. The hyperprior's centres are learned from the prior itself (empirical
Bayes, :meth:`PriorModel._empirical_bayes`): a few prior columns are each fitted as if they
were the new device, and the median of their variances replaces the defaults. On the visible
leave-one-out targets (3 seeds) this raised fbnet's mean rho at 10 samples from 0.915 to
0.932, left nb201 unchanged (0.9585 vs 0.9587 on six columns) and lowered ofa-mbv3's MAPE at
20 from 5.53% to 5.33%. But the prior devices are not every device a user has: their
centres are 10-40 times smaller than the defaults, and a target unlike all of them (an
accelerator) could not raise its variances that far from 10 measurements (fbnet's synthetic
accelerators fell from 0.934 to 0.870 at 10 samples). So the hyperprior is a mixture of two
components, one at the empirical-Bayes centres and one at :data:`DEFAULT_LAMBDA`
(:attr:`PriorModel.centres`); each is fitted and the better penalised likelihood wins. Against
the empirical-Bayes centres alone (3 seeds, ``benchmarks/transfer.py``-style builds): fbnet's
six synthetic accelerators 0.870 -> 0.910 at 10 and 0.956 -> 0.965 at 20; visible
leave-one-out means unchanged within seed noise (fbnet 0.9323 -> 0.9316 at 10, nb201
0.9699 both, ofa-mbv3 proxy MAPE@20 6.10% -> 6.09%).

On spaces whose genes are a layer's hyperparameters (kernel, expansion, depth; no
:func:`~esm.sampling.shared_menu`) a layer's costs say all its genes do, and a device unlike
the prior may be no more than a cost model. There a third component holds that hypothesis
(:data:`COARSE_OFF`, :data:`COARSE_UP`): the prior's device directions and every finer block
all but off, the network totals (MACs, parameters, activation bytes, layers) ten times the
default. With two components, ofa-mbv3's four synthetic accelerator-like targets made the fit
call its misfit noise (fitted noise 1-4% where the target's is 0.5%): the prior hurt, 1.04% at
20 networks against the prior-less default's 0.78% (whose cross-validated choice on the first
target at 10 networks is a ridge on these four totals). The empirical-Bayes fits do not see
this component (a prior column that is best a cost model would make the first centre a copy
of it).

The likelihood charges the cost model's broad variances an Occam factor that 10 networks do
not repay even where it predicts better, so from :data:`COST_LOO_MIN` networks the fit takes
it over the likelihood's choice when its mean leave-one-out relative error is below
:data:`COST_LOO_RATIO` times the choice's: the simpler hypothesis where cross-validation
clearly prefers it, like the prior-less default's one-standard-error rule. Synthetic targets
(``benchmarks/transfer.py``, 5 seeds): 2.03% at 10 networks and 0.77% at 20 with the earlier
per-stage cost centre and no such choice, 1.42% and 0.65% now (prior-less default 1.04% and
0.78%); every visible column at 10 and 20 within 0.07 points, but titan_xp_1 (proxy prior:
6.84% -> 6.96% at 10, 6.59% -> 6.82% at 20; means 6.32% -> 6.32% and 5.96% -> 6.00%;
leave-one-out prior 5.90% -> 5.91% and 5.46% -> 5.46%). Where an operation's identity
matters beyond its costs (shared menus: nb201's folded cells, fbnet's per-operation tables) a
cost-model component lost (nb201 pixel3 rho at 10 0.909 -> 0.788; with the one-hot genes kept,
fbnet's synthetic targets 0.939 -> 0.931), so those spaces keep two.

Every component is centred on the prior or on a cost model, and its log-normal spread (1.5)
makes a variance 7000 times its centre all but impossible. A device unlike all of them then
stays unlearned however much it is measured: Accel-NASBench's FPGAs with only its TPUs as the
prior (``benchmarks/transfer.py``, ``large``) at 100 networks 9-22% (fitted noise 18-28%),
where the same model on 1,000 rows reaches 1.4% (its per-stage and per-slot variances 7000
and 4000 times their centres) and the prior-less default from zero 4-8%. Beyond
:data:`BROAD_AFTER` networks the fit therefore also considers two *broad* hypotheses
(:data:`BROAD_BLOCKS`, :data:`BROAD`: every cost block at unit variance, as a ridge on the
features without a prior would be; and the coarse blocks alone, network totals to per-stage
and per-operation costs, the per-slot ones at their defaults), each fitted like a component,
and takes the one with the lower leave-one-out error when that is below
:data:`BROAD_LOO_RATIO` times the likelihood's choice's, or below the cost model's
:data:`COST_LOO_RATIO` where it also wins the likelihood. Never on the likelihood alone: on
nb201's pixel3, whose rows include near-zero latencies, the broad fit won that at 30 networks
by fitting outliers, with a worse leave-one-out error. The full one's free directions (160
on anb-mnasnet) make it the larger step, so on cross-validation alone the margin is wider
than the cost model's: at 0.75 it was taken at 30 networks on ofa-mbv3's 2080ti_1 (``proxy``
prior) and anb's vck190 (TPU prior) and lost there (7.96% -> 9.32%, 14.4% -> 15.3%, 2
seeds); at 0.5 on neither. The coarse one (27 directions on anb-mnasnet) is what 50 networks
can carry where 160 overfit (FPGA ms/image with the TPU prior, 50 random networks: 8-10%
against 23%); alone it lost at 100 networks (6.67% against 5.89%, 2 seeds), where the
per-slot costs pay. In a sweep over every column of every space with random networks (2
seeds; 30, 50 and 100 networks), every build where a broad fit with a ratio of 0.77-0.94 lost
had the worse likelihood, and every one where it won the likelihood with a ratio below 0.75
gained (one build of anb vck190, TPU prior: 10.8% -> 5.2% at 50). Measured (5 seeds,
``large``): anb-mnasnet FPGAs and TPUs with a prior of the other kind, mean MAPE without a broad
hypothesis, with the full one alone on its leave-one-out margin, and with both (networks
designed all the way, before :data:`DESIGN_UNTIL`): at 50 networks
14.12%, 11.28%, 8.42%; at 100 11.25%, 5.56%, 4.38% (the prior-less default from zero 5.51%);
at 30 14.96%, 14.96%, 14.75%. Every other figure of the transfer model in
``benchmarks/transfer.py`` (few shots, 1,000-row ceilings, builds to 200 networks) is
unchanged. Leave-one-out errors are relative to the noise floor (:data:`FLOOR`), as the
noise is.

The posterior mean is again a weight vector on the same features, so the fitted model is an
ordinary linear :class:`esm.surrogate.Surrogate` on the ``fcc`` encoding
(:meth:`TransferFit.to_surrogate`): the prior is folded into the file, which predicts for any
genome with NumPy and the compiled core alone.

Networks a runtime folds away
-----------------------------
Some spaces build networks whose output does not depend on their input
(:meth:`~esm.spaces.SearchSpace.constant_output`: nb201's cells without an input-to-output
path, 341 of 15,625). Their costs count every operation and most runtimes run them, but some
fold them to a constant: nb201's pixel3 (HW-NAS-Bench, TFLite) takes 3 us to 1 ms over 283 of
them, 1-37 ms over the rest. No linear model represents that. Fitted with its 1 / y^2
weights, such a prior column's weight vector was mostly those rows, and a few of them among a
target's measurements (the design picks 2-4 of the first 20: they lie at the edge of the
features) tore its fit. With batches of 5, pixel3's rho at 20 networks was 0.33-0.91 over
five seeds. So the prior columns are fitted, and the empirical-Bayes fits run, on the other
networks only. :meth:`PriorModel.fit` leaves the target's measured constant-output networks
out first. When their median latency is below :data:`FLOOR` times what the fit of the others
predicts for them (or one is far below, see below), the device folds them: they stay out and
are predicted at the constant of least relative error over their measurements
(``constant_output_ms`` in the model file, applied by every prediction path of
:class:`esm.surrogate.Surrogate` and :class:`esm.predictor.Predictor`).
Otherwise every network is fitted. The test is against the prediction, not FLOOR times the
median: on an accelerator the all-``none`` cell is legitimately that cheap, and predicted so.
Measured (``benchmarks/transfer.py``, prior ``loo``, 5 seeds), against the same builds before:

- pixel3 0.910 / 957 % -> 0.920 / 26 % at 10 networks, and 0.910 / 820 % -> 0.918 / 25 % at 20.
- pixel3 with batches of 5: 0.479 and 0.629 -> 0.907 and 0.919.
- nb201's mean rho 0.9702 -> 0.9720 at 10 and 0.9724 -> 0.9730 at 20. The target's fold alone
  gives 0.9707 and 0.9729; the rest comes from the prior no longer carrying pixel3's folded rows
  into every target's device covariance (2080ti_1 and gold_6240 +0.006 at 10).
- At 5 networks nb201's mean went from 0.938 to 0.959 (the batch-256 GPUs from 0.80-0.82 to
  0.96-0.97). But the first synthetic accelerator went from 14 % to 49 % MAPE there: a tighter
  prior, and 5 networks of a device unlike all of it. At 10 and 20 networks the synthetic
  accelerators are within 0.3 points of before, and none of them is called folding. No other
  space builds such networks.

But pixel3 runs 58 of the 341 at full cost, and no structure tells them apart (of the cells
whose output node has only ``none`` inputs, 105 fold and 20 do not). The design took one
constant-output network per first batch, and now and then it was one of those: then the fold
went unseen, and every folded network was predicted 100-1000 times too slow. So the design's
batches of :data:`PROBE_BATCH` networks or more hold a *fold probe* until a constant-output
network is measured (in a batch of 5 it cost too much: nb201's mean rho at 5 networks 0.959 ->
0.921, the pruning stand-ins' 0.939 -> 0.845): the one of least work
(fewest MACs, activations and layers, then first choices: nb201's all-``none`` cell, which
any runtime that folds anything folds). And one measured network below :data:`FOLD_RATIO`
of its prediction is enough to call the device folding (most of them below FLOOR was the
rule before): the constant is fitted on those below FLOOR, the others are fitted with the rest
of the networks, and the constant's error on them joins the stated error. Measured against
the same builds before (``benchmarks/transfer.py``'s harness):

- stand-ins that fold: silver_4210r, gold_6240, samsung_a50 and essential_ph_1 with pixel3's
  folded cells (scaled to the column), prior the 15 other columns, 10 seeds: mean MAPE at 10
  and 20 networks 128 % -> 8.0 % (single builds had been 1100-1400 %), rho 0.9642 -> 0.9639;
- the visible columns, prior ``loo``: mean rho / MAPE at 10 networks 0.9717 / 5.33 % ->
  0.9712 / 5.31 % (seeds 0-4) and 0.9717 / 18.7 % -> 0.9711 / 5.49 % (seeds 5-9, where the
  old design missed pixel3's fold once: 237 % -> 25 % on that column); at 20 0.9730 / 5.42 %
  -> 0.9727 / 5.07 % and 0.9728 / 5.29 % -> 0.9726 / 5.42 %. The largest loss is 1080ti_32 at
  10 (-0.004 and -0.007), pixel3 (-0.011 and -0.006);
- the packaged prior (all 16 columns): the first 10 networks of seeds 0-9 now hold the
  all-``none`` cell each (before, seed 4 held a cell pixel3 runs: 1.88 ms);
- the synthetic accelerators (every column as the prior): 0.991 / 0.58 % -> 0.991 / 0.55 % at
  10, 0.991 / 0.48 % -> 0.991 / 0.48 % at 20.

Runtimes that prune dead operations
-----------------------------------
A graph compiler may drop every operation that cannot change the output: TFLite does
(:meth:`~esm.spaces.SearchSpace.pruned`: nb201's edges off every input-to-output path set to
``none``; other spaces build no such operations). Such a device times each network's pruned
form, while its costs count every operation it holds, so 40 % of nb201's cells cost it less
than their features say. No weight vector on the written features fits it: a visible column
turned into such a device (each network's latency is that column's latency of its pruned form,
a row of the same dataset) and built with the others as prior gave a mean rho of 0.83 at 10
networks. :meth:`PriorModel.fit` therefore fits the networks other than constant-output ones
twice, as written and as pruned, and takes the pruned fit when its marginal likelihood (in ms,
:attr:`TransferFit.evidence_`) is higher by :data:`PRUNE_NATS`; the fit, its expected errors
and the model file (``pruned``, applied by every prediction path of
:class:`esm.surrogate.Surrogate` and :class:`esm.predictor.Predictor`) then take every network
in its pruned form. Whether the device folds constant-output networks is still judged on the
written fit: pruned, they are all one cell (the all-``none`` one, at the device's fixed time),
and pixel3's folded times, which spread up to 1.9 ms, then hid its fold (one device build at
20 networks went from 27 % to 203 % true MAPE; judged as written, 17.7 %). The prior columns
stay fitted on the written networks: fitting pixel3's on its pruned ones (lower
cross-validated error) made the stand-ins' mean rho 0.978 -> 0.960 at 10 and the columns' own
0.972 -> 0.967. The design works on the written features. Measured
(``benchmarks/transfer.py --parts pruning``, prior ``loo``, 5 seeds, every visible nb201 column):

- the 16 stand-ins: mean rho / MAPE 0.829 / 21.2 % -> 0.976 / 6.1 % at 10 networks, 0.842 /
  19.9 % -> 0.982 / 4.9 % at 20 and 0.793 -> 0.939 at 5;
- the 16 columns themselves: unchanged but for pixel3, which prunes in part (its live
  operations alone explain it better than the written ones, ``benchmarks/nb201_dead_ops.py``):
  0.920 / 26.1 % -> 0.917 / 24.2 % at 10, the mean 0.9720 / 5.45 % -> 0.9717 / 5.33 %. With
  1000 of its rows pixel3 is called pruning: 0.936 / 20.5 % -> 0.909 / 15.7 %. It runs part of
  its dead work: on its connected cells, features half written and half pruned give 0.949 /
  16.2 % against 0.934 / 19.5 % as written (one fit, the same 1000 rows);
- the margin: over these builds the natural-log Bayes factor for pruning, on the 15 columns
  other than pixel3, reached 0.82 at 5 networks (4 of 75 builds would have been called
  pruning without a margin) and stayed below -1.7 from 10 on; on their stand-ins it was
  above 3 from 10 networks on (at 5: 72 of 75 above 0, 10 % of them below 0.81);
- narrower priors (``family``, ``kind``: no other phone for a phone) on six columns: 2 of 78
  builds at 10 networks and 4 of 72 at 5 were called pruning, none of 86 at 20. All were one
  design (seed 0 of the phone-less prior) on the phones samsung_a50 and essential_ph_1, whose
  measured networks the pruned form explained better (leave-one-out error 8-13 % against
  15-24 %) and the other networks worse (essential_ph_1 at 10: rho 0.926 -> 0.782). A margin
  of ln 20 would have avoided the four at 5 networks but not the two at 10, and cost the
  stand-ins with a ``family`` prior 0.973 -> 0.960 at 10 and 0.889 -> 0.800 at 5;
- the synthetic accelerators: unchanged at 10 and 20; at 5, one build of synthetic 0 (whose
  written fit is 49 % off there) was called pruning, 0.948 -> 0.857;
- a third, half-pruned hypothesis (features half written and half pruned, taken on the same
  evidence rule) was never taken for pixel3 at 5-20 networks, and was taken wrongly on
  gold_6240, samsung_a50 and essential_ph_1: the 16 columns' mean rho 0.9589 / 0.9717 /
  0.9730 -> 0.9558 / 0.9710 / 0.9726 at 5 / 10 / 20 networks (5 seeds). Not adopted.

Choosing what to measure
------------------------
:class:`TransferDesign` (strategy ``"transfer"``) picks networks greedily to minimise the
posterior variance of the predicted latency averaged over the candidate pool, weighted by
``1 / predicted latency^2`` (relative error), under the model above (before any measurement:
under the prior alone), conditioned on what is already measured. Each batch considers a
random half of the free candidates, so seeds differ. A predicted latency below
:data:`FLOOR` times the median counts as that floor, as in the fit's noise: with a floor of
0.05, one measured network of a near-zero kind (nb201 cells with a disconnected output,
which some runtimes fold away: 283 of pixel3's rows are under 0.05 ms) made every similar
network up to 400 times as important, the design chased them (3-5 of 20 networks instead
of 0.4) and pixel3's rho at 20 fell to 0.838 from 0.909 at 10; with 0.3 it stays at 0.909
and nb201's leave-one-out mean at 20 rises from 0.9681 to 0.9725 (3 seeds; fbnet and
ofa-mbv3 unchanged, their predictions never reach the floor).

The design is for the few shots: from :data:`DESIGN_UNTIL` training networks on, it draws
uniformly at random. The variance it shrinks is the error of a right model; beyond the few
shots most of the error left is the model's misfit, which that variance does not see, and the
design went on measuring where the model was unsure rather than where it was wrong: on nb201's
silver_4210r (prior ``loo``, 2 seeds) 4.77% at 20 networks and still 4.64% at 100, where
uniform networks after the first 20 reach 2.83%. Uniform networks also make the leave-one-out
errors the broad hypotheses are chosen on an estimate of the error over the space. Measured
(``benchmarks/transfer.py``, ``large``, 5 seeds; anb-mnasnet, mean MAPE of the six columns),
designed all the way against uniform beyond 20: prior ``loo`` at 30, 50 and 100 networks
5.09%, 4.93%, 4.71% against 4.99%, 4.53%, 3.69% (zcu102 time per image at 100 7.95% against
5.06%; the prior-less default from zero 5.91%); prior ``kind`` 14.75%, 8.42%, 4.38% against
14.85%, 7.55%, 4.40%. Every visible column left out in turn (2-3 seeds; geometric mean over
columns of the ratio of the two MAPEs, at 30, 50 and 100 networks): nb201 0.95, 0.95, 0.91;
ofa-mbv3 (50, 100) 0.99, 0.97; anb-mnasnet (50, 100) 0.95, 0.82 (prior of the other kind 1.02,
1.01); fbnet 1.05, 1.05, 1.03. It costs where the model's form is the device's: fbnet's
latencies are close to an operation table, and on the accelerator-like ``synthetic`` targets
(additive, 0.5% noise; 2 seeds, 4 targets) the design stays ahead beyond 20 (fbnet at 50
networks 0.58-0.79% against 0.66-0.93%; anb-mnasnet and ofa-mbv3 within 0.1 point; nb201
equal). Drawing half of each batch uniformly landed mostly between the two. Of the 13
``cost`` targets (networks measured until the true error meets the target) one changed:
ofa-mbv3's 2080ti_64 at 3%, 44 networks -> 54 (per seed 20, 40, 50, 70, 40 -> 20, 30, 110,
80, 30; the prior-less default 20), whose error from 30 to 100 networks lies close to 3%.

Why this form (``benchmarks/transfer.py``, results in ``benchmarks/results/transfer.md``):
developed by leaving each visible device column out in turn, and by also leaving out its
whole device family and testing on synthetic accelerator-like targets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from esm.errors import InputError
from esm.sampling import Pool, Strategy, shared_menu, stages

if TYPE_CHECKING:
    from esm.prior import PriorData
    from esm.spaces import SearchSpace
    from esm.surrogate import Surrogate

__all__ = [
    "BROAD",
    "BROAD_AFTER",
    "BROAD_BLOCKS",
    "BROAD_LOO_RATIO",
    "COARSE_OFF",
    "COARSE_UP",
    "COST_LOO_MIN",
    "COST_LOO_RATIO",
    "DEFAULT_LAMBDA",
    "DESIGN_UNTIL",
    "FOLD_RATIO",
    "PROBE_BATCH",
    "PRUNE_NATS",
    "PriorModel",
    "TransferDesign",
    "TransferFit",
    "feature_encoder",
]

#: Per-slot cost fields of the model's features.
FIELDS = ("macs", "params", "activation_bytes")
#: Default prior variance of each block (the centre of the hyperprior), coarse to fine.
DEFAULT_LAMBDA = {"scale": 1.0, "b0": 1.0, "dev": 1.0, "tot": 1e-2, "cnt": 1e-2,
                  "stage": 1e-3, "cc": 1e-3, "slot": 1e-4, "oh": 1e-4}
#: The hyperprior's cost-model component on spaces without a shared menu (module docs): the
#: variances of the blocks it turns all but off, and the factors on the coarse blocks' defaults.
COARSE_OFF = {"dev": 1e-4, "stage": 1e-9, "slot": 1e-9, "oh": 1e-9}
COARSE_UP = {"tot": 10.0}
#: The broad hypotheses (module docs): the variance of the cost blocks each sets, the blocks
#: (every cost block; the coarse ones alone), the networks beyond which the fit considers
#: them, and the share of the likelihood's choice's leave-one-out error one must be below.
BROAD = 1.0
BROAD_BLOCKS = (("tot", "cnt", "stage", "cc", "slot", "oh"), ("tot", "cnt", "stage", "cc"))
BROAD_AFTER = 20
BROAD_LOO_RATIO = 0.5
#: The fit takes the cost-model centre over the likelihood's choice when its mean leave-one-out
#: relative error is below this share of the choice's, from this many networks (module docs).
COST_LOO_RATIO = 0.75
COST_LOO_MIN = 8
#: Blocks whose variance is fitted (``scale`` and the intercept ``b0`` stay broad).
FREE = ("dev", "tot", "cnt", "stage", "cc", "slot", "oh")
#: Latencies below this share of the median count as this share (the noise floor of the fit,
#: and the floor of the design's relative-error weights).
FLOOR = 0.3
#: A device folds constant-output networks when one of them ran below this share of its
#: prediction (a folded one runs 100-1000 times faster; module docs), or most below FLOOR.
FOLD_RATIO = 0.03
#: Batches of fewer networks hold no fold probe (module docs): one of 5 cost nb201's mean rho
#: at 5 networks 0.959 -> 0.921.
PROBE_BATCH = 10
#: Natural-log Bayes factor by which the pruned fit must beat the written one before a device
#: is taken to prune dead operations (module docs): ln 3, the start of "positive" evidence.
PRUNE_NATS = math.log(3.0)
#: Training networks the design chooses; beyond them it draws uniformly (module docs).
DESIGN_UNTIL = 20
#: Default relative noise, and the spread of the log-normal hyperprior (natural log units).
SIGMA = 0.03
HYPER_SD = 1.5
#: Rows of a uniform sample of the space added to the prior rows to standardise features.
_REFERENCE_SAMPLE = 2000
#: Empirical Bayes: prior columns treated as new devices, and their rows fitted.
EB_COLUMNS = 6
EB_ROWS = 200


def feature_encoder(space: SearchSpace) -> Any:
    """The encoder of the transfer model's features (a compiled ``fcc`` variant)."""
    from esm.surrogate.encoders import get_encoder

    return get_encoder("fcc", space, parts=["stats", "layerwise", "onehot"],
                       layer_fields=list(FIELDS))


# ------------------------------------------------------------------------------- features
class _Basis:
    """Standardised features with an intercept column, and the block factor matrices."""

    def __init__(self, space: SearchSpace, reference: np.ndarray) -> None:
        self.space = space
        self.encoder = feature_encoder(space)
        X = self.encoder.transform(reference)
        sd = X.std(axis=0)
        self.keep = np.flatnonzero(sd > 1e-12 * (np.abs(X).max(axis=0) + 1e-300))
        self.mean = X.mean(axis=0)
        self.scale = np.where(sd > 0, sd, 1.0)
        self.n_raw = X.shape[1]
        self.n = self.keep.size + 1
        self.blocks: dict[str, np.ndarray] = {}
        for name, T in self._maps().items():
            B = X @ T
            sdb = B.std(axis=0)
            ok = sdb > 1e-12 * (np.abs(B).max(axis=0) + 1e-300)
            if not ok.any():
                continue
            L = (self.scale[:, None] * T)[self.keep][:, ok] / sdb[ok]
            self.blocks[name] = np.vstack([np.zeros((1, int(ok.sum()))), L])

    def z(self, genomes: np.ndarray) -> np.ndarray:
        X = self.encoder.transform(genomes)
        Z = (X[:, self.keep] - self.mean[self.keep]) / self.scale[self.keep]
        return np.hstack([np.ones((len(Z), 1)), Z])

    def _maps(self) -> dict[str, np.ndarray]:
        """Raw features -> raw block features, one matrix per block."""
        space, groups = self.space, self.encoder.feature_groups
        eye = np.eye(self.n_raw)
        n_slots, nf = len(space.slot_names), len(FIELDS)
        layer = np.asarray(groups["layerwise"]).reshape(n_slots, nf)
        onehot = np.asarray(groups["onehot"])
        maps = {"tot": eye[:, groups["stats"]], "slot": eye[:, groups["layerwise"]],
                "oh": eye[:, onehot]}
        st = stages(space)
        if st is not None:
            T = np.zeros((self.n_raw, (int(st.max()) + 1) * nf))
            for s in range(n_slots):
                T[layer[s], st[s] * nf + np.arange(nf)] = 1.0
            maps["stage"] = T
        if shared_menu(space):
            c, g = int(space.choices[0]), space.genome_length
            cnt = np.zeros((self.n_raw, c))
            for j in range(g):
                cnt[onehot[j * c:(j + 1) * c], np.arange(c)] = 1.0
            maps["cnt"] = cnt
            table = _slot_cost_table(space)
            if table is not None:
                cc = np.zeros((self.n_raw, c * nf))
                for j in range(g):
                    for v in range(c):
                        cc[onehot[j * c + v], v * nf + np.arange(nf)] = table[j, v]
                maps["cc"] = cc
        return maps


def _slot_cost_table(space: SearchSpace) -> np.ndarray | None:
    """``[gene, choice, field]`` costs of slot ``gene`` when its gene takes ``choice``, on
    spaces where slot ``j``'s costs depend on gene ``j`` alone (checked on a sample); else
    None."""
    g, c = space.genome_length, int(space.choices[0])
    if len(space.slot_names) != g:
        return None
    idx = [["macs", "params", "activation_bytes", "layers"].index(f) for f in FIELDS]
    uniform = np.repeat(np.arange(c)[:, None], g, axis=1).astype(np.int32)
    table = space.costs(uniform).slots[:, :, idx].astype(np.float64).transpose(1, 0, 2)
    probe = space.sample(256, seed=3)
    got = space.costs(probe).slots[:, :, idx].astype(np.float64)
    if not np.allclose(got, table[np.arange(g)[None, :], probe, :]):
        return None
    return np.asarray(table)


_DEVICE_ALPHAS = np.logspace(-4, 2, 7)


def _fit_device(Z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Relative-error ridge weights of one prior column (alpha by 3-fold CV)."""
    alphas = _DEVICE_ALPHAS
    w = 1.0 / y**2
    w = w / w.mean()
    folds = np.arange(y.size) % 3
    np.random.default_rng(0).shuffle(folds)
    grams = [((Z[folds == f] * w[folds == f, None]).T @ Z[folds == f],
              (Z[folds == f] * w[folds == f, None]).T @ y[folds == f]) for f in range(3)]
    A_all = sum(a for a, _ in grams)
    b_all = sum(b for _, b in grams)
    pen = np.ones(Z.shape[1])
    pen[0] = 0.0
    best = (math.inf, float(alphas[0]))
    for a in alphas:
        err = 0.0
        for f, (A, b) in enumerate(grams):
            coef = np.linalg.solve(A_all - A + np.diag(a * pen) + 1e-9 * np.eye(len(pen)),
                                   b_all - b)
            te = folds == f
            err += float(np.sum((Z[te] @ coef / y[te] - 1.0) ** 2))
        if err < best[0]:
            best = (err, float(a))
    return np.asarray(np.linalg.solve(A_all + np.diag(best[1] * pen) + 1e-9 * np.eye(len(pen)),
                                      b_all))


# ------------------------------------------------------------------------------- the prior
class PriorModel:
    """The prior over a new device's weights, built once from a :class:`PriorData`.

    Parameters
    ----------
    prior : PriorData
        Other devices' latencies for the space.
    lam : dict, optional
        Prior variances of the blocks (defaults :data:`DEFAULT_LAMBDA`); fitted ones start here.
    sigma : float
        Default relative measurement noise.
    hyper_sd : float
        Spread of the log-normal hyperprior of every fitted variance (0: keep them fixed).
    prune : bool
        Whether :meth:`fit` considers a runtime that prunes dead operations (module docs).
    """

    def __init__(self, prior: PriorData, *, lam: dict[str, float] | None = None,
                 sigma: float = SIGMA, hyper_sd: float = HYPER_SD, prune: bool = True) -> None:
        self.space = prior.space
        self.prune = bool(prune)
        self.prior = prior
        self.sigma, self.hyper_sd = float(sigma), float(hyper_sd)
        ref = np.concatenate([prior.genomes, self.space.sample(_REFERENCE_SAMPLE, seed=0)])
        self.basis = _Basis(self.space, ref)
        Zp = self.basis.z(prior.genomes)
        W = []
        varying = ~self.space.constant_output(prior.genomes)
        for j in range(len(prior.columns)):
            ok = np.isfinite(prior.latency[:, j]) & varying
            coef = _fit_device(Zp[ok], prior.latency[ok, j])
            W.append(coef / float(np.mean(Zp @ coef)))  # mean latency 1 over the prior rows
        self.weights = np.asarray(W)
        self.wbar = self.weights.mean(axis=0)
        self.factors: dict[str, np.ndarray] = {"scale": self.wbar[:, None],
                                               "b0": np.eye(self.basis.n)[:, :1]}
        if len(W) > 1:
            self.factors["dev"] = ((self.weights - self.wbar) / math.sqrt(len(W))).T
        for name, L in self.basis.blocks.items():
            self.factors[name] = L / math.sqrt(L.shape[1])
        self.lam = {k: float(v) for k, v in {**DEFAULT_LAMBDA, **(lam or {})}.items()
                    if k in self.factors}
        self.eb_: dict[str, float] = {}
        defaults = dict(self.lam)
        #: Centres of the hyperprior's components (type-II MAP keeps the best fit of each):
        #: the empirical-Bayes centres (:meth:`_empirical_bayes`, with three prior columns or
        #: more: each left out and fitted under the others, the defaults the only centre), the
        #: defaults, and the cost-model centre (:data:`COARSE_OFF`) on spaces without a shared
        #: menu.
        self.centres = [defaults]
        #: The cost-model centre (one of :attr:`centres`), or None.
        self.cost_centre: dict[str, float] | None = None
        #: The broad hypotheses (:data:`BROAD_BLOCKS`; not components of the hyperprior: a
        #: fit considers them beyond :data:`BROAD_AFTER` networks, on their leave-one-out
        #: errors).
        self.broad_centres: list[dict[str, float]] = []
        fitted = lam is None and hyper_sd > 0
        if fitted and len(W) >= 3:
            self._empirical_bayes(Zp, varying)
            self.centres = [dict(self.lam), *self.centres]
        if fitted and not shared_menu(self.space):
            self.cost_centre = {k: COARSE_OFF.get(k, v * COARSE_UP.get(k, 1.0))
                                for k, v in defaults.items()}
            self.centres.append(self.cost_centre)
        for blocks in BROAD_BLOCKS if fitted else ():
            broad = {k: BROAD if k in blocks else v for k, v in defaults.items()}
            if broad not in self.broad_centres:  # a space without the finer blocks
                self.broad_centres.append(broad)

    def _empirical_bayes(self, Zp: np.ndarray, varying: np.ndarray) -> None:
        """Centre the hyperprior on what the prior's own devices need.

        Up to :data:`EB_COLUMNS` prior columns are each treated as a new device: left out
        of the mean and the device covariance, fitted (type-II, one pass) on
        :data:`EB_ROWS` of their ``varying`` rows (not constant-output networks). The median
        of their fitted block variances becomes the default of every fitted variance
        (:attr:`lam`); the fitted ones are in :attr:`eb_`.
        """
        import copy

        W, lat = self.weights, self.prior.latency
        rng = np.random.default_rng(0)
        logs: dict[str, list[float]] = {}
        pick = np.unique(np.linspace(0, len(W) - 1, min(len(W), EB_COLUMNS)).round()
                         .astype(int))
        for j in pick:
            Wj = np.delete(W, j, axis=0)
            view = copy.copy(self)
            view.wbar = Wj.mean(axis=0)
            view.factors = {**self.factors, "scale": view.wbar[:, None],
                            "dev": ((Wj - view.wbar) / math.sqrt(len(Wj))).T}
            ok = np.flatnonzero(np.isfinite(lat[:, j]) & (lat[:, j] > 0) & varying)
            rows = rng.choice(ok, size=min(EB_ROWS, ok.size), replace=False)
            fit = TransferFit(view, Zp[rows], lat[rows, j], passes=1)
            for k in FREE:
                if k in fit.lam_:
                    logs.setdefault(k, []).append(math.log(fit.lam_[k]))
        self.eb_ = {k: float(math.exp(np.median(v))) for k, v in logs.items()}
        self.lam.update(self.eb_)

    @property
    def columns(self) -> list[str]:
        """Names of the prior columns."""
        return list(self.prior.columns)

    def z(self, genomes: Any) -> np.ndarray:
        """Standardised features (with intercept) of ``genomes``."""
        return self.basis.z(self.space.validate(genomes))

    def mean_function(self, Z: np.ndarray) -> np.ndarray:
        """The mean prior device's latency (normalised) at feature rows ``Z``."""
        return np.asarray(Z @ self.wbar)

    def fit(self, genomes: Any, latency_ms: Any) -> TransferFit:
        """The posterior for measured ``genomes`` (see :class:`TransferFit`).

        Two questions about the device's runtime are settled by its measurements (module
        docs). Does it prune dead operations? On a space that builds them
        (:meth:`~esm.spaces.SearchSpace.pruned`), the networks other than constant-output
        ones are fitted as written and as pruned, and the pruned fit is taken when its
        marginal likelihood is higher by :data:`PRUNE_NATS` (it then predicts every network
        from its pruned form). Does it fold networks whose output does not depend on their
        input (:meth:`~esm.spaces.SearchSpace.constant_output`)? When their median latency
        is below :data:`FLOOR` times what the fit of the others as written predicts for them
        (pruned, they would all be the same network), they stay out, predicted at the
        constant of least relative error over their measurements; otherwise every network is
        fitted.
        """
        g = self.space.validate(genomes)
        y = np.asarray(latency_ms, np.float64).ravel()
        if y.shape[0] != g.shape[0] or y.size < 1:
            raise InputError(f"{g.shape[0]} genomes but {y.size} latencies")
        if not np.all(np.isfinite(y)) or np.any(y <= 0):
            raise InputError("latencies must be finite and positive")
        const = self.space.constant_output(g)
        rest = ~const
        if np.count_nonzero(rest) < 3:
            return TransferFit(self, self.basis.z(g), y)
        forms = [g]  # as written, and as pruned where that differs
        pg = self.space.pruned(g) if self.prune else g
        if np.any(pg[rest] != g[rest]):
            forms.append(pg)
        Zs = [self.basis.z(x) for x in forms]
        if len(forms) == 1 and not const.any():
            return TransferFit(self, Zs[0], y)
        fits = [TransferFit(self, Z[rest], y[rest]) for Z in Zs]
        prune = len(fits) == 2 and fits[1].evidence_ > fits[0].evidence_ + PRUNE_NATS
        fit = fits[int(prune)]
        if const.any():  # the fold is judged as written: pruned, every such cell is the same
            pred = np.maximum(fits[0].predict_z(Zs[0][const]), FLOOR * float(np.median(y[rest])))
            ratio = y[const] / pred
            if float(np.median(ratio)) < FLOOR or float(ratio.min()) < FOLD_RATIO:
                run = np.flatnonzero(const)[ratio >= FLOOR]  # ones it runs: fitted too
                if run.size:
                    keep = rest.copy()
                    keep[run] = True
                    fit = TransferFit(self, Zs[int(prune)][keep], y[keep])
                fit._fold(y[const][ratio < FLOOR], y, y[run])
            else:
                fit = TransferFit(self, Zs[int(prune)], y)
        fit.pruned_ = prune
        return fit

    def design_matrix(self, Z: np.ndarray, lam: dict[str, float]) -> np.ndarray:
        """``A`` with ``Z P Z' = A A'`` (the prior covariance of the latency function)."""
        return np.hstack([math.sqrt(lam[k]) * (Z @ F) for k, F in self.factors.items()
                          if lam.get(k, 0.0) > 0])

    def describe(self) -> dict[str, Any]:
        return {**self.prior.describe(), "blocks": {k: int(F.shape[1])
                                                   for k, F in self.factors.items()},
                "lambda_default": dict(self.lam), "lambda_empirical_bayes": dict(self.eb_),
                "lambda_centres": [dict(c) for c in self.centres],
                "lambda_broad": [dict(c) for c in self.broad_centres],
                "sigma_default": self.sigma}


def _relative_median(y: np.ndarray) -> float:
    """The constant ``c`` of least ``mean(|c / y - 1|)``: the median of ``y`` weighted by
    ``1 / y``."""
    v = np.sort(y)
    w = np.cumsum(1.0 / v)
    return float(v[np.searchsorted(w, 0.5 * w[-1])])


def _scale(f0: np.ndarray, y: np.ndarray) -> float:
    ok = f0 > 0
    if not ok.any():
        return float(np.median(y))
    return float(np.exp(np.median(np.log(y[ok] / f0[ok]))))


class TransferFit:
    """Posterior of a new device given its measurements (built by :meth:`PriorModel.fit`).

    Attributes
    ----------
    lam_, sigma_ : fitted block variances and relative noise
    hyper_nll_ : float
        Penalised negative log marginal likelihood of the fitted variances (last pass).
    coef_ : np.ndarray
        Posterior mean weights on the standardised features (intercept first), in ms.
    weights_ : np.ndarray
        Huber weights of the measurements (1: inlier).
    """

    kind = "transfer"
    #: Fit the hyperparameters in the block factors' space once the networks outnumber its
    #: columns (:meth:`_fit_hyper_from`); False keeps the n x n kernel
    #: (``benchmarks/transfer_fit_time.py`` times the two).
    weight_space = True

    def __init__(self, model: PriorModel, Z: np.ndarray, y: np.ndarray,
                 passes: int = 2) -> None:
        self.model = model
        self.Z, self.y = Z, y
        #: Every measured latency, in the order measured (:attr:`y` less the folded ones).
        self.y_measured = y
        self.constant_ms_: float | None = None
        self.constant_error_ = 0.0
        self.s_ = _scale(model.mean_function(Z), y)
        self.yn = y / self.s_
        self.r = self.yn - model.mean_function(Z)
        #: Each block's factor columns at the measured networks (``K = sum lam_k ZF_k ZF_k'``).
        self.zf = {k: Z @ F for k, F in model.factors.items()}
        self.grams = {k: B @ B.T for k, B in self.zf.items()}
        self.floor = np.maximum(self.yn, FLOOR * float(np.median(self.yn)))
        self.weights_ = np.ones(y.size)
        self.lam_, self.sigma_ = dict(model.lam), model.sigma
        self.hyper_nll_ = math.nan
        #: Whether the device prunes dead operations: every network is predicted from its
        #: :meth:`~esm.spaces.SearchSpace.pruned` form (set by :meth:`PriorModel.fit`).
        self.pruned_ = False
        for _ in range(passes):  # variances and Huber weights, alternately
            if model.hyper_sd > 0 and y.size >= 3:
                self._fit_hyper()
            self._posterior()

    @property
    def evidence_(self) -> float:
        """Penalised log marginal likelihood of the latencies in ms (of :attr:`hyper_nll_`,
        which is that of the latencies divided by the speed :attr:`s_`): comparable between
        fits of the same measurements under different features."""
        return -(self.hyper_nll_ + self.y.size * math.log(self.s_))

    # ------------------------------------------------------------------ internals
    def _kernel(self, lam: dict[str, float], sigma: float) -> np.ndarray:
        K = sum(lam[k] * G for k, G in self.grams.items() if lam.get(k, 0.0) > 0)
        sd = sigma * self.floor / np.sqrt(self.weights_)
        return np.asarray(K + np.diag(sd**2))

    def _fit_hyper(self) -> None:
        """Type-II MAP of the free variances and the noise under a hyperprior with one
        log-normal component per centre of :attr:`PriorModel.centres`: each component is
        fitted from its centre, and the one with the better penalised likelihood wins, or the
        cost-model one or (beyond :data:`BROAD_AFTER` networks) a broad hypothesis where its
        leave-one-out error is clearly lower (module docs)."""
        m = self.model
        keys = [k for k in FREE if k in self.grams and m.lam.get(k, 0.0) > 0]
        centres = m.centres + (m.broad_centres if self.y.size > BROAD_AFTER else [])
        fits = [self._fit_hyper_from(keys, np.array([math.log(c[k]) for k in keys]
                                                    + [math.log(m.sigma)]))
                for c in centres]

        def hyper(res: Any) -> tuple[dict[str, float], float]:
            return ({**self.lam_, **{k: float(math.exp(v))
                                     for k, v in zip(keys, res.x[:-1], strict=True)}},
                    float(math.exp(res.x[-1])))

        best = min(fits[:len(m.centres)], key=lambda res: float(res.fun))
        cost = next((f for f, c in zip(fits, m.centres, strict=False) if c is m.cost_centre),
                    None)
        others = [f for f in [cost, *fits[len(m.centres):]] if f is not None and f is not best]
        if others and self.y.size >= COST_LOO_MIN:
            limit = self._loo_error(*hyper(best))
            # a broad hypothesis that also wins the likelihood needs the cost model's margin
            taken = [(e, f) for f in others
                     if (e := self._loo_error(*hyper(f))) < limit * (
                         COST_LOO_RATIO if f is cost or f.fun < best.fun else BROAD_LOO_RATIO)]
            if taken:
                best = min(taken, key=lambda t: t[0])[1]
        self.hyper_nll_ = float(best.fun)
        self.lam_, self.sigma_ = hyper(best)

    def _loo_error(self, lam: dict[str, float], sigma: float) -> float:
        """Mean leave-one-out relative error of the measurements under ``lam`` and ``sigma``
        (relative to the noise floor)."""
        Kinv = np.linalg.inv(self._kernel(lam, sigma))
        return float(np.mean(np.abs(Kinv @ self.r / np.diag(Kinv)) / self.floor))

    def _fit_hyper_from(self, keys: list[str], x0: np.ndarray) -> Any:
        """L-BFGS-B on the log variances ``keys`` and log noise, hyperprior centred on
        ``x0``; the scipy result. The likelihood is computed on the n x n kernel, or once the
        networks outnumber the blocks' factor columns in their space
        (:meth:`_weight_space_objective`: the same values, faster from a few hundred networks;
        ``benchmarks/transfer_fit_time.py``)."""
        from scipy.optimize import minimize

        m = self.model
        sd = m.hyper_sd
        noise = self.floor**2 / self.weights_

        def kernel(x: np.ndarray) -> tuple[float, np.ndarray]:
            lam = {**self.lam_, **{k: math.exp(v) for k, v in zip(keys, x[:-1], strict=True)}}
            sig2 = math.exp(2 * x[-1])
            K = sum(lam[k] * G for k, G in self.grams.items() if lam.get(k, 0.0) > 0)
            K = K + np.diag(sig2 * noise)
            try:
                L = np.linalg.cholesky(K)
            except np.linalg.LinAlgError:
                return 1e30, np.zeros_like(x)
            a = np.linalg.solve(L.T, np.linalg.solve(L, self.r))
            Kinv = np.linalg.solve(L.T, np.linalg.solve(L, np.eye(len(self.r))))
            nll = 0.5 * float(self.r @ a) + float(np.log(np.diag(L)).sum())
            nll += 0.5 * float(np.sum((x - x0) ** 2)) / sd**2
            M = np.outer(a, a) - Kinv
            grad = np.array([-0.5 * lam[k] * float(np.sum(M * self.grams[k])) for k in keys]
                            + [-float(np.sum(np.diag(M) * sig2 * noise))])
            return nll, grad + (x - x0) / sd**2

        blocks = [k for k in self.zf if k in keys or self.lam_.get(k, 0.0) > 0]
        wide = self.y.size > sum(self.zf[k].shape[1] for k in blocks)
        objective = (self._weight_space_objective(blocks, keys, x0, noise)
                     if wide and self.weight_space else kernel)
        bounds = [(v - 3 * sd, v + 3 * sd) for v in x0]
        return minimize(objective, x0, jac=True, method="L-BFGS-B", bounds=bounds)

    def _weight_space_objective(self, blocks: list[str], keys: list[str], x0: np.ndarray,
                                noise: np.ndarray) -> Any:
        """:meth:`_fit_hyper_from`'s objective through the Woodbury identity: the same
        penalised negative log marginal likelihood and gradient, in the block factors' space
        (``R`` columns) instead of the measurements' (``n``); cheaper once ``n > R``."""
        sd, n = self.model.hyper_sd, self.y.size
        B = np.hstack([self.zf[k] for k in blocks])
        width = [self.zf[k].shape[1] for k in blocks]
        col = np.repeat(np.arange(len(blocks)), width)
        S0 = (B / noise[:, None]).T @ B  # B' N^-1 B, with D = sigma^2 N
        b0 = B.T @ (self.r / noise)
        rr0 = float(self.r @ (self.r / noise))
        logn = float(np.log(noise).sum())
        eye = np.eye(B.shape[1])
        free = [blocks.index(k) for k in keys]

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            lam = {**self.lam_, **{k: math.exp(v) for k, v in zip(keys, x[:-1], strict=True)}}
            sig2 = math.exp(2 * x[-1])
            q = np.sqrt(np.array([lam[k] for k in blocks]))[col]  # Lambda^1/2
            S, u = S0 / sig2, q * b0 / sig2  # B' D^-1 B and U' D^-1 r, U = B Lambda^1/2
            A = eye + q[:, None] * S * q[None, :]
            try:
                L = np.linalg.cholesky(A)
            except np.linalg.LinAlgError:
                return 1e30, np.zeros_like(x)
            P = np.linalg.solve(L.T, np.linalg.solve(L, eye))  # A^-1
            v = P @ u
            nll = 0.5 * (rr0 / sig2 - float(u @ v))  # r' K^-1 r / 2
            nll += 0.5 * (n * math.log(sig2) + logn) + float(np.log(np.diag(L)).sum())
            nll += 0.5 * float(np.sum((x - x0) ** 2)) / sd**2
            w = b0 / sig2 - S @ (q * v)  # B' K^-1 r
            QS = q[:, None] * S
            tr = np.diag(S) - np.einsum("ij,ij->j", QS, P @ QS)  # diag B' K^-1 B
            fit = np.bincount(col, w**2, len(blocks)) - np.bincount(col, tr, len(blocks))
            resid = self.r - B @ (q * v)  # D K^-1 r
            dsig = float(np.sum(resid**2 / (sig2 * noise))) - (n - B.shape[1] + np.trace(P))
            grad = np.array([-0.5 * lam[keys[i]] * fit[j] for i, j in enumerate(free)]
                            + [-dsig])
            return nll, grad + (x - x0) / sd**2

        return objective

    def _posterior(self, robust: int = 3) -> None:
        self.weights_ = np.ones(self.y.size)
        base = self.sigma_ * self.floor
        for it in range(robust + 1):
            Kinv = np.linalg.inv(self._kernel(self.lam_, self.sigma_))
            alpha = Kinv @ self.r
            loo = alpha / np.diag(Kinv)
            if it == robust:
                break
            z = np.abs(loo) / base
            spread = max(1.0, 1.4826 * float(np.median(z)))
            self.weights_ = np.minimum(1.0, 2.0 * spread / np.maximum(z, 1e-12))
        self.loo_rel_ = np.abs(loo) / self.yn
        w = self.model.wbar.copy()
        Zt_a = self.Z.T @ alpha
        for k, F in self.model.factors.items():
            lk = self.lam_.get(k, 0.0)
            if lk > 0:
                w += lk * (F @ (F.T @ Zt_a))
        self.coef_ = self.s_ * w
        self._Kinv = Kinv

    def _fold(self, folded: np.ndarray, y_measured: np.ndarray,
              ran: np.ndarray | None = None) -> None:
        """The device folds constant-output networks: predict them at the constant of least
        mean relative error on ``folded`` (their measurements), whose leave-one-out relative
        error (1 with a single one), with the constant's error on those it ``ran`` at full
        cost, is their expected error and joins :attr:`loo_rel_`."""
        self.y_measured = y_measured
        self.constant_ms_ = _relative_median(folded)
        if folded.size > 1:
            loo = np.array([_relative_median(np.delete(folded, i)) for i in range(folded.size)])
            rel = np.abs(loo / folded - 1.0)
        else:
            rel = np.ones(1)
        if ran is not None:
            rel = np.concatenate([rel, np.abs(self.constant_ms_ / ran - 1.0)])
        self.constant_error_ = float(rel.mean())
        self.loo_rel_ = np.concatenate([self.loo_rel_, rel])

    def _form(self, g: np.ndarray) -> np.ndarray:
        """The networks the device runs for validated genomes ``g``."""
        return self.model.space.pruned(g) if self.pruned_ else g

    # ------------------------------------------------------------------ public
    def predict_z(self, Z: np.ndarray) -> np.ndarray:
        """Predicted latency (ms) at feature rows ``Z`` (not folded: rows carry no genome)."""
        return np.asarray(Z @ self.coef_)

    def predict(self, genomes: Any) -> np.ndarray:
        """Predicted latency (ms) of ``genomes`` (folded ones at :attr:`constant_ms_`)."""
        g = self.model.space.validate(genomes)
        out = self.predict_z(self.model.basis.z(self._form(g)))
        if self.constant_ms_ is not None:
            out[self.model.space.constant_output(g)] = self.constant_ms_
        return out

    def expected_errors(self, genomes: Any, chunk: int = 2048) -> np.ndarray:
        """Expected absolute relative error of each prediction under the posterior.

        The posterior predictive of a network's latency is Gaussian: the variance of the
        latency function given the measurements, plus the fitted relative noise (the truth
        it will be compared with is a measurement too). Its expected absolute relative
        error is ``sqrt(2 / pi)`` times its relative standard deviation, with predictions
        floored at :data:`FLOOR` times the median measurement, as in the fit.

        Parameters
        ----------
        genomes : array [N, G]
            Networks to predict (not the measured ones, for an error estimate).
        chunk : int
            Rows per block of the computation (memory).

        Returns
        -------
        np.ndarray [N]
            Expected ``|predicted / measured - 1|`` of each network (a fraction).
        """
        m = self.model
        g = m.space.validate(genomes)
        Z = m.basis.z(self._form(g))
        A = m.design_matrix(self.Z, self.lam_)
        floor = FLOOR * float(np.median(self.yn))
        out = np.empty(len(Z))
        for i in range(0, len(Z), chunk):
            Zc = Z[i:i + chunk]
            Ac = m.design_matrix(Zc, self.lam_)
            V = Ac @ A.T
            var = np.sum(Ac**2, axis=1) - np.sum((V @ self._Kinv) * V, axis=1)
            mu = np.maximum(Zc @ self.coef_ / self.s_, floor)
            out[i:i + chunk] = np.sqrt(np.maximum(var, 0.0) / mu**2 + self.sigma_**2)
        out *= math.sqrt(2.0 / math.pi)
        if self.constant_ms_ is not None:
            out[m.space.constant_output(g)] = self.constant_error_
        return out

    def to_surrogate(self, genomes: Any | None = None, *, measured: Any | None = None,
                     column: str | None = None, device: str | None = None) -> Surrogate:
        """The fit as an ordinary linear :class:`esm.surrogate.Surrogate` file model.

        ``genomes`` (the measured training rows, in fit order) are recorded as its training
        genomes, ``measured`` (every other network measured on the device) as its measured
        genomes: evaluation skips both.
        """
        from esm.surrogate.metrics import evaluate
        from esm.surrogate.surrogate import Surrogate, _versions, fingerprint

        b, m = self.model.basis, self.model
        coef = np.zeros(b.n_raw)
        coef[b.keep] = self.coef_[1:]
        arrays = {"x_mean": b.mean.copy(), "x_scale": b.scale.copy(), "coef": coef,
                  "intercept": np.array([self.coef_[0]])}
        g = np.zeros((0, m.space.genome_length), np.int32) if genomes is None \
            else m.space.validate(genomes)
        y = self.y_measured
        info = {
            "model": {"name": "transfer", "class": "esm.transfer.TransferFit",
                      "params": {"lambda": {k: float(v) for k, v in self.lam_.items()},
                                 "sigma": self.sigma_, "speed": self.s_,
                                 "outliers": int(np.sum(self.weights_ < 1.0))},
                      "prior": m.describe()},
            "target": {"transform": "identity", "column": column, "device": device,
                       "unit": "ms"},
            "training": {"n": int(y.size), "fingerprint": fingerprint(g, y)
                         if len(g) == y.size else "", "seed": None},
            "metrics": {},
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self.constant_ms_ is not None:
            info["constant_output_ms"] = self.constant_ms_
        if self.pruned_:
            info["pruned"] = True
        extra = None if measured is None or len(measured) == 0 \
            else m.space.canonical(measured)
        sur = Surrogate(m.space, b.encoder, "linear", {"target": "identity"}, arrays, info,
                        train_genomes=m.space.canonical(g) if len(g) else None,
                        measured_genomes=extra)
        if len(g) == y.size and len(g) >= 2:
            sur.info["metrics"]["train"] = evaluate(y, sur.predict(g))
        return sur


# ------------------------------------------------------------------------------- design
@dataclass
class _PoolCache:
    pool_id: int
    n: int
    Z: np.ndarray
    #: Which pool rows are constant-output networks, and the fold probe among them (the one
    #: of least work: nb201's all-``none`` cell), or -1.
    const: np.ndarray
    probe: int


class TransferDesign(Strategy):
    """Greedy integrated-variance design under a :class:`PriorModel` (module docs).

    Parameters (``get_strategy``-style keyword arguments): ``model`` (the PriorModel,
    required), ``frac`` (share of the free candidates considered per batch, 0.5), ``min_fit``
    (measured networks before the variances are fitted to them for the design, 5), ``until``
    (measured networks from which it draws uniformly at random, :data:`DESIGN_UNTIL`).
    """

    name = "transfer"

    def __init__(self, space: SearchSpace, **params: Any) -> None:
        super().__init__(space, **params)
        if not isinstance(params.get("model"), PriorModel):
            raise InputError("the transfer design needs a PriorModel (model=...)")
        self.model: PriorModel = params["model"]
        self._cache: _PoolCache | None = None

    def _pool(self, pool: Pool) -> _PoolCache:
        c = self._cache
        if c is None or c.pool_id != id(pool) or c.n != len(pool):
            const = np.asarray(self.space.constant_output(pool.genomes), bool)
            idx = np.flatnonzero(const)
            probe = -1
            if idx.size:  # the least work (MACs, activations, layers), then first choices
                co = self.space.costs(pool.genomes[idx])
                first = np.asarray(pool.genomes[idx], np.int64).sum(axis=1)
                probe = int(idx[np.lexsort((first, co.layers, co.activation_bytes,
                                            co.macs))[0]])
            c = self._cache = _PoolCache(id(pool), len(pool), self.model.z(pool.genomes),
                                         const, probe)
        return c

    def _select(self, pool: Pool, k: int, rng: np.random.Generator, measured: np.ndarray,
                y: np.ndarray | None, free: np.ndarray) -> np.ndarray:
        if measured.size >= int(self.params.get("until", DESIGN_UNTIL)):
            return rng.choice(np.flatnonzero(free), size=k, replace=False)
        m = self.model
        c = self._pool(pool)
        Z = c.Z
        lam, sigma = dict(m.lam), m.sigma
        mean = m.mean_function(Z)
        if y is not None and measured.size >= int(self.params.get("min_fit", 5)):
            fit = TransferFit(m, Z[measured], np.asarray(y, np.float64))
            lam, sigma = fit.lam_, fit.sigma_
            mean = fit.predict_z(Z) / fit.s_
        A = m.design_matrix(Z, lam)
        pos = np.maximum(mean, FLOOR * float(np.median(np.abs(mean))) + 1e-12)
        w = pos**-2
        w /= w.mean()
        S = (A * w[:, None]).T @ A / len(A)
        ev, evec = np.linalg.eigh(S)
        root = evec * np.sqrt(np.maximum(ev, 0.0))
        noise = (sigma * pos) ** 2
        cand = np.flatnonzero(free)
        frac = float(self.params.get("frac", 0.5))
        if frac < 1.0 and cand.size > 2 * k:
            cand = np.sort(rng.choice(cand, size=max(k, int(frac * cand.size)),
                                      replace=False))
        # until a constant-output network is measured, the fold probe goes first (module docs)
        probe = c.probe if c.probe >= 0 and k >= PROBE_BATCH and free[c.probe] \
            and not c.const[measured].any() else -1
        if probe >= 0:
            cand = np.union1d(cand, [probe])
        # posterior covariance C given the measured rows, carried as G = A_c C, H = G root
        rows = np.concatenate([measured, cand])
        Ar = A[rows]
        G = Ar.copy()
        H = G @ root
        nr = noise[rows]
        taken = np.zeros(rows.size, bool)

        def add(j: int) -> None:
            nonlocal G, H
            u = G[j].copy()
            c = nr[j] + float(Ar[j] @ u)
            zu = Ar @ u
            G -= np.outer(zu, u / c)
            H -= np.outer(zu, (root.T @ u) / c)
            taken[j] = True

        for j in range(measured.size):
            add(j)
        out: list[int] = []
        if probe >= 0:
            add(measured.size + int(np.searchsorted(cand, probe)))
            out.append(probe)
        for _ in range(k - len(out)):
            score = (H * H).sum(axis=1) / (nr + (G * Ar).sum(axis=1))
            score[taken] = -np.inf
            j = int(np.argmax(score))
            add(j)
            out.append(int(rows[j]))
        return np.asarray(out)

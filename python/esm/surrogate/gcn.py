"""A graph convolutional latency regressor for cell spaces (BRP-NAS style).

The cell DAG is turned into a graph whose nodes are the cell input, one node per edge
operation and the cell output; an operation node is linked to the operations that consume its
result. Node features are the operation's (standardised) onehot columns plus a constant
node-type channel. Trained with torch (float64, full-batch Adam); prediction and the exported
``gcn`` array form use NumPy only (:func:`esm.predictor.reference.predict_raw`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from esm.errors import InputError
from esm.predictor import reference
from esm.predictor.model import ModelArrays
from esm.spaces.base import SearchSpace
from esm.surrogate.models import LatencyRegressor


def normalized_adjacency(A: np.ndarray) -> np.ndarray:
    """``D^-1/2 (A + A^T + I) D^-1/2`` (undirected, with self loops)."""
    M = ((A + A.T + np.eye(len(A))) > 0).astype(np.float64)
    d = 1.0 / np.sqrt(M.sum(axis=1))
    return d[:, None] * M * d[None, :]


def cell_graph(edges: list[tuple[int, int]], n_nodes: int, column_offsets: list[int],
               n_ops: int) -> dict[str, np.ndarray]:
    """The graph of a cell with operations on its edges.

    Parameters
    ----------
    edges : list of (to, from)
        The cell's edges in gene order; node 0 is the cell input, ``n_nodes - 1`` its output.
    n_nodes : int
    column_offsets : list of int
        First onehot column of every edge's gene.
    n_ops : int
        Operations per edge (onehot columns per gene).
    """
    E = len(edges)
    V = E + 2  # input, one node per edge operation, output
    A = np.zeros((V, V))
    for e, (to, frm) in enumerate(edges):
        if frm == 0:
            A[0, 1 + e] = 1
        if to == n_nodes - 1:
            A[1 + e, V - 1] = 1
        for e2, (_, frm2) in enumerate(edges):
            if frm2 == to:
                A[1 + e, 1 + e2] = 1
    node_index = np.full((V, n_ops), -1, dtype=np.int32)
    for e in range(E):
        node_index[1 + e] = np.arange(column_offsets[e], column_offsets[e] + n_ops)
    node_const = np.zeros((V, 3))
    node_const[0, 0] = node_const[V - 1, 2] = 1
    node_const[1:V - 1, 1] = 1
    return {"adjacency": normalized_adjacency(A), "node_index": node_index,
            "node_const": node_const}


def graph_for_space(space: SearchSpace) -> dict[str, np.ndarray]:
    """The cell graph of a cell space (one whose module defines ``EDGES``, like ``nb201``),
    with node columns laid out as in the ``onehot`` encoder."""
    edges = getattr(space, "cell_edges", None) or getattr(
        sys.modules[type(space).__module__], "EDGES", None)
    if edges is None:
        raise InputError(f"model 'gcn' needs a cell space; {space.name} has no cell edges")
    edges = [tuple(int(v) for v in e) for e in edges]
    choices = space.choices
    if space.genome_length != len(edges) or len(set(choices.tolist())) != 1:
        raise InputError(f"{space.name}: genes do not map one-to-one to cell edges")
    n_nodes = max(max(e) for e in edges) + 1
    offsets = [int(v) for v in np.concatenate([[0], np.cumsum(choices)[:-1]])]
    return cell_graph(edges, n_nodes, offsets, int(choices[0]))


class GCNRegressor(LatencyRegressor):
    """Graph convolutional network regressor.

    Parameters
    ----------
    graph : dict or None
        ``adjacency [V, V]`` (normalised), ``node_index int [V, C]`` (feature column of each
        node channel, -1 for none) and ``node_const [V, T]``; None: one node holding every
        feature (the network is then a plain MLP), which is what generic feature matrices get.
    hidden : int
    n_layers : int
        Graph convolution layers.
    epochs, learning_rate, weight_decay : training settings (full-batch Adam, torch).
    """

    def __init__(self, graph: dict[str, Any] | None = None, hidden: int = 64,
                 n_layers: int = 3, epochs: int = 400, learning_rate: float = 5e-3,
                 weight_decay: float = 1e-5, random_state: int | None = None,
                 target: str = "auto", columns: Any = None) -> None:
        self.graph = graph
        self.hidden = hidden
        self.n_layers = n_layers
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.target = target
        self.columns = columns

    def _graph(self, F: int) -> dict[str, np.ndarray]:
        if self.graph is None:
            return {"adjacency": np.ones((1, 1)),
                    "node_index": np.arange(F, dtype=np.int32)[None, :],
                    "node_const": np.ones((1, 1))}
        g = {k: np.asarray(v) for k, v in self.graph.items()}
        idx = g["node_index"]
        if idx.max() >= F:
            raise ValueError(f"graph node_index refers to column {idx.max()} of {F}")
        return {"adjacency": g["adjacency"].astype(np.float64),
                "node_index": idx.astype(np.int32),
                "node_const": g["node_const"].astype(np.float64)}

    def _fit_inner(self, Xs: np.ndarray, yt: np.ndarray) -> Any:
        import torch

        g = self._graph(Xs.shape[1])
        self.y_shift_ = float(np.mean(yt))
        sd = float(np.std(yt))
        self.y_unit_ = sd if sd > 0 else 1.0
        seed = 0 if self.random_state is None else int(self.random_state)
        gen = torch.Generator().manual_seed(seed)
        H0 = torch.from_numpy(_node_features(g, Xs))
        A = torch.from_numpy(g["adjacency"])
        y = torch.from_numpy((yt - self.y_shift_) / self.y_unit_)
        dims = [H0.shape[2]] + [int(self.hidden)] * int(self.n_layers)
        params = []
        for i in range(int(self.n_layers)):
            W = torch.randn(dims[i], dims[i + 1], generator=gen, dtype=torch.float64)
            params += [(W * np.sqrt(2.0 / dims[i])).requires_grad_(),
                       torch.zeros(dims[i + 1], dtype=torch.float64, requires_grad=True)]
        Wout = (torch.randn(dims[-1], 1, generator=gen, dtype=torch.float64)
                / np.sqrt(dims[-1])).requires_grad_()
        bout = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([*params, Wout, bout], lr=self.learning_rate,
                               weight_decay=self.weight_decay)
        for _ in range(int(self.epochs)):
            opt.zero_grad()
            H = H0
            for i in range(int(self.n_layers)):
                H = torch.relu(torch.einsum("uv,nvc->nuc", A, H) @ params[2 * i]
                               + params[2 * i + 1])
            pred = H.mean(dim=1) @ Wout[:, 0] + bout[0]
            loss = torch.mean((pred - y) ** 2)
            loss.backward()
            opt.step()
        arrays = dict(g)
        for i in range(int(self.n_layers)):
            arrays[f"W{i}"] = params[2 * i].detach().numpy().copy()
            arrays[f"b{i}"] = params[2 * i + 1].detach().numpy().copy()
        # fold the target standardisation into the output layer
        arrays["Wout"] = Wout.detach().numpy().copy() * self.y_unit_
        arrays["bout"] = bout.detach().numpy().copy() * self.y_unit_ + self.y_shift_
        self.n_iter_ = int(self.epochs)
        return arrays

    def _raw(self, Xs: np.ndarray) -> np.ndarray:
        return reference.predict_raw(self._export_inner(), Xs)

    def _export_inner(self) -> ModelArrays:
        arrays = {k: np.asarray(v) for k, v in self.estimator_.items()}
        return ModelArrays("gcn", len(self.columns_), arrays, {"n_layers": int(self.n_layers)})


def _node_features(g: dict[str, np.ndarray], Xs: np.ndarray) -> np.ndarray:
    idx = g["node_index"].astype(np.int64)
    padded = np.concatenate([Xs, np.zeros((len(Xs), 1))], axis=1)
    H = padded[:, np.where(idx >= 0, idx, Xs.shape[1])]
    const = np.broadcast_to(g["node_const"], (len(Xs), *g["node_const"].shape))
    return np.ascontiguousarray(np.concatenate([H, const], axis=2))

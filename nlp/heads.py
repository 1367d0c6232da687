"""A small MLP over sentence embeddings: trained with torch, served with numpy.

The artefact is plain arrays, so serving needs neither torch nor its import time (~1 s) in
every worker; `predict_proba` mirrors scikit-learn's so it drops in where a LogisticRegression was.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class MlpHead:
    def __init__(self, hidden: int = 256, epochs: int = 60, lr: float = 2e-3, weight_decay: float = 1e-4,
                 dropout: float = 0.2, seed: int = 0) -> None:
        self.hidden, self.epochs, self.lr, self.weight_decay, self.dropout, self.seed = \
            hidden, epochs, lr, weight_decay, dropout, seed
        self.classes_: np.ndarray | None = None
        self.w1 = self.b1 = self.w2 = self.b2 = None

    def fit(self, X: np.ndarray, y: Sequence[str], sample_weight: Sequence[float] | None = None) -> "MlpHead":
        import torch

        torch.manual_seed(self.seed)
        classes = np.array(sorted(set(y)))
        idx = {c: i for i, c in enumerate(classes)}
        Xt = torch.tensor(np.asarray(X, dtype=np.float32))
        yt = torch.tensor([idx[v] for v in y])
        w = torch.tensor(np.asarray(sample_weight if sample_weight is not None else np.ones(len(y)), dtype=np.float32))
        # Balanced classes, as the logistic-regression heads use.
        counts = torch.bincount(yt, weights=w, minlength=len(classes))
        w = w * (counts.sum() / (len(classes) * counts.clamp(min=1e-6)))[yt]
        model = torch.nn.Sequential(torch.nn.Dropout(self.dropout), torch.nn.Linear(Xt.shape[1], self.hidden),
                                    torch.nn.GELU(), torch.nn.Dropout(self.dropout),
                                    torch.nn.Linear(self.hidden, len(classes)))
        opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epochs):
            model.train()
            for batch in torch.randperm(len(yt), generator=g).split(128):
                opt.zero_grad()
                loss = (torch.nn.functional.cross_entropy(model(Xt[batch]), yt[batch], reduction="none")
                        * w[batch]).sum() / w[batch].sum()
                loss.backward()
                opt.step()
        lin1, lin2 = model[1], model[4]
        self.w1, self.b1 = lin1.weight.detach().numpy().T.copy(), lin1.bias.detach().numpy().copy()
        self.w2, self.b2 = lin2.weight.detach().numpy().T.copy(), lin2.bias.detach().numpy().copy()
        self.classes_ = classes
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        h = np.asarray(X, dtype=np.float32) @ self.w1 + self.b1
        h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h ** 3)))  # GELU (tanh form)
        z = h @ self.w2 + self.b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

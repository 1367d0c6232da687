"""FAISS vector index with stable int64 ids (one per script).

Exact inner-product search (IndexIDMap2 over IndexFlatIP) for small bases; above
`APPROX_THRESHOLD` vectors an IVF index (IndexIVFFlat, which supports add/remove by id) is
trained on the current vectors. Vectors are L2-normalised, so inner product = cosine.
Persisted under the data dir with the model name, dimension and a checksum of its contents.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

APPROX_THRESHOLD = 20_000


class VectorIndex:
    def __init__(self, dim: int, model: str) -> None:
        self.dim = dim
        self.model = model
        self.kind = "flat"
        self._index = self._flat()
        self.ids: set[int] = set()

    def _flat(self):
        import faiss

        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nprobe(self) -> int:
        return getattr(self._index, "nprobe", 0)

    def build(self, ids: np.ndarray, vectors: np.ndarray, approx: bool | None = None) -> None:
        """Replace the contents; choose exact or approximate by size unless told."""
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        approx = len(ids) >= APPROX_THRESHOLD if approx is None else approx
        if approx and len(ids) >= 256:
            nlist = int(min(4096, max(16, 4 * np.sqrt(len(ids)))))
            quantizer = faiss.IndexFlatIP(self.dim)
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors if len(vectors) <= 100_000 else vectors[np.random.default_rng(0).choice(len(vectors), 100_000, replace=False)]
            index.train(sample)
            index.nprobe = max(8, nlist // 16)
            index.add_with_ids(vectors, ids)
            self._index, self.kind = index, "ivf"
        else:
            self._index, self.kind = self._flat(), "flat"
            if len(ids):
                self._index.add_with_ids(vectors, ids)
        self.ids = set(int(i) for i in ids)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        self.remove(ids)
        self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.ids.update(int(i) for i in ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray([i for i in ids if int(i) in self.ids], dtype=np.int64)
        if len(ids):
            self._index.remove_ids(ids)
            self.ids.difference_update(int(i) for i in ids)

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not self.ids:
            return []
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self._index.search(q, min(k, len(self.ids)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    # --- persistence ------------------------------------------------------------------------
    def checksum(self) -> str:
        return hashlib.sha256(",".join(map(str, sorted(self.ids))).encode()).hexdigest()[:16]

    def save(self, directory: Path, content_checksum: str) -> None:
        import faiss

        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "index.faiss.tmp"
        faiss.write_index(self._index, str(tmp))
        tmp.replace(directory / "index.faiss")
        (directory / "index.json").write_text(json.dumps({
            "model": self.model, "dim": self.dim, "kind": self.kind, "count": len(self.ids),
            "ids_checksum": self.checksum(), "content_checksum": content_checksum,
        }))

    @classmethod
    def load(cls, directory: Path, model: str, dim: int, content_checksum: str) -> "VectorIndex | None":
        """The saved index if it matches model, dimension and contents; None otherwise (rebuild)."""
        import faiss

        meta_path, path = directory / "index.json", directory / "index.faiss"
        if not (meta_path.is_file() and path.is_file()):
            return None
        try:
            meta = json.loads(meta_path.read_text())
            if meta["model"] != model or meta["dim"] != dim or meta["content_checksum"] != content_checksum:
                return None
            idx = cls(dim, model)
            idx._index = faiss.read_index(str(path))
            idx.kind = meta["kind"]
            idmap = faiss.vector_to_array(idx._index.id_map) if hasattr(idx._index, "id_map") else None
            if idmap is None:
                return None if meta["kind"] == "flat" else idx._ivf_ids(meta)
            idx.ids = set(int(i) for i in idmap)
            return idx if idx.checksum() == meta["ids_checksum"] else None
        except Exception:  # noqa: BLE001 - any unreadable or inconsistent file means: rebuild
            return None

    def _ivf_ids(self, meta: dict) -> "VectorIndex | None":
        import faiss

        invlists = self._index.invlists
        ids: set[int] = set()
        for lst in range(self._index.nlist):
            n = invlists.list_size(lst)
            if n:
                ids.update(int(i) for i in faiss.rev_swig_ptr(invlists.get_ids(lst), n))
        self.ids = ids
        return self if self.checksum() == meta["ids_checksum"] else None

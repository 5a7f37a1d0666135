"""Instance labels of an image predicted block by block: globally unique ids, and objects cut
by a block border merged into one id.

Each block is labelled on its own (local ids 1..n, from the probabilities of the block and a
margin around it, so the post-processing sees context). Then the ids become global by an
offset per block, and the objects on the two sides of each border are matched: pixels facing
each other across the border pair their labels, and two labels are merged when each is the
other's most frequent partner (so an object touching a different object across the border is
not swallowed by it). Merges are transitive (connected components of the pair graph, scipy),
and the final ids are 1..N in block order. Nothing here imports TensorFlow or dask.
"""

from __future__ import annotations

import numpy as np

__all__ = ["local_labels", "faces", "merge_table"]


def local_labels(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """``(labels renumbered 1..n in order of value, as uint32, n)``; 0 stays 0."""
    flat = np.asarray(labels).ravel()
    values, inverse = np.unique(flat, return_inverse=True)
    has_bg = values.size and values[0] == 0
    new = np.arange(values.size, dtype=np.uint32) + (0 if has_bg else 1)
    out = new[inverse].reshape(np.shape(labels))
    return out, int(values.size - (1 if has_bg else 0))


def faces(labels: np.ndarray) -> dict:
    """The outer rows and columns of a block's labels: ``top``, ``bottom``, ``left``,
    ``right`` (what its neighbours see across the borders)."""
    return {"top": labels[0].copy(), "bottom": labels[-1].copy(),
            "left": labels[:, 0].copy(), "right": labels[:, -1].copy()}


def _mutual_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairs ``(a, b)`` of global ids facing each other (both > 0) where each is the other's
    most frequent partner; ``(k, 2)``."""
    keep = (a > 0) & (b > 0)
    if not keep.any():
        return np.empty((0, 2), dtype=np.int64)
    pairs, counts = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0, return_counts=True)
    order = np.lexsort((-counts,))  # most frequent first, stable
    pairs, counts = pairs[order], counts[order]
    best_a = {}
    best_b = {}
    for (x, y), _ in zip(pairs.tolist(), counts.tolist()):
        best_a.setdefault(x, y)
        best_b.setdefault(y, x)
    return np.asarray([(x, y) for x, y in best_a.items() if best_b.get(y) == x],
                      dtype=np.int64).reshape(-1, 2)


def merge_table(counts: dict, block_faces: dict, neighbours: list) -> tuple[dict, int]:
    """The global ids of every block.

    ``counts``: block key -> number of local labels; ``block_faces``: block key ->
    :func:`faces` of its local labels; ``neighbours``: ``(upper_or_left, lower_or_right,
    "vertical" | "horizontal")`` block key pairs sharing a border (vertical: the first lies
    above the second). Returns ``({block key: lookup array}, N)``: local id ``i`` of a block
    becomes ``lookup[i]`` (``lookup[0] == 0``), ids 1..N unique over the image.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys = list(counts)
    offsets, total = {}, 0
    for key in keys:
        offsets[key] = total
        total += int(counts[key])

    def glob(key, local):
        local = np.asarray(local, dtype=np.int64)
        return np.where(local > 0, local + offsets[key], 0)

    edges = [np.empty((0, 2), dtype=np.int64)]
    for first, second, direction in neighbours:
        if direction == "vertical":
            a, b = block_faces[first]["bottom"], block_faces[second]["top"]
        else:
            a, b = block_faces[first]["right"], block_faces[second]["left"]
        edges.append(_mutual_pairs(glob(first, a), glob(second, b)))
    pairs = np.concatenate(edges) - 1  # global ids 1..total -> nodes 0..total-1
    if total == 0:
        return {key: np.zeros(1, dtype=np.uint32) for key in keys}, 0
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(total, total))
    _, component = connected_components(graph, directed=False)
    # number components in order of their first node, so ids follow block order
    _, first_seen = np.unique(component, return_index=True)
    rank = np.empty(first_seen.size, dtype=np.int64)
    rank[np.argsort(first_seen)] = np.arange(first_seen.size)
    final = (rank[component] + 1).astype(np.uint32)
    tables = {}
    for key in keys:
        start = offsets[key]
        tables[key] = np.concatenate([[0], final[start:start + int(counts[key])]]).astype(
            np.uint32)
    return tables, int(first_seen.size)

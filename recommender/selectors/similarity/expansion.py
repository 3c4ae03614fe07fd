"""Alpha query expansion (``RECOMMENDER_QUERY_EXPANSION_N``): re-query with the top results blended in."""

from __future__ import annotations

import numpy as np

from catalog.embedding_targets import target
from recommender.models import ModelVersion
from recommender.selectors.similarity.types import Kind


def expanded_vectors(
    *, kind: Kind, model_version: ModelVersion, vectors: np.ndarray, hits: list[tuple[int, float]], n: int
) -> np.ndarray:
    """Each query vector plus the top-n results' vectors weighted by similarity cubed, re-normalised."""
    top = hits[:n]
    if not top:
        return vectors
    searched = target(kind)
    rows = searched.embedding.objects.filter(
        model_version_id=model_version.pk, **{f"{searched.kind}__in": [i for i, _ in top]}
    )
    if searched.regions:
        rows = rows.filter(region=0)
    by_id = {getattr(r, searched.fk): np.asarray(r.vector, dtype=np.float64) for r in rows}
    neighbours = sum((max(0.0, 1.0 - d) ** 3) * by_id[i] for i, d in top if i in by_id)
    expanded = vectors + neighbours
    norms = np.linalg.norm(expanded, axis=1, keepdims=True)
    return expanded / np.where(norms == 0, 1.0, norms)


def stored_vectors(kind: Kind, model_version: ModelVersion, source_id: int) -> np.ndarray:
    """A stored image's vectors of this version (a snapshot's regions), float64."""
    source = target(kind)
    rows = source.embedding.objects.filter(model_version_id=model_version.pk, **{source.kind: source_id})
    return np.asarray([np.asarray(v, dtype=np.float64) for v in rows.values_list("vector", flat=True)])


def is_embedded(kind: Kind, model_version: ModelVersion, source_id: int) -> bool:
    """Whether the image has this version's vectors."""
    source = target(kind)
    return source.embedding.objects.filter(model_version_id=model_version.pk, **{source.kind: source_id}).exists()

"""Shop the look: a look's garments, one pick per garment, items for one piece, the garment a look matched by.

A garment is searched among the catalog categories its group maps to (``catalog.taxonomy``,
``catalog.selectors.category_ids_for_group``) with the shopper's filters in the same statement:
a shopper's category filter narrows each garment's categories, and a garment whose kind the
filter leaves out gets no pick. The look's answer is one item per garment, in the look's own
order (top of the photo first), each item picked once. A look without garments (the parser found
nothing, or a window-scheme model) answers with the whole-photo search instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from django.db import connection, transaction

from catalog.embedding_targets import ITEM, SNAPSHOT
from catalog.models import SnapshotGarment
from catalog.selectors import category_ids_by_group, category_ids_for_group
from catalog.taxonomy import GROUP_NAMES
from recommender.models import ModelVersion
from recommender.selectors.filters import Filters
from recommender.selectors.similarity import (
    ItemMatch,
    NotEmbedded,
    SearchOptions,
    SnapshotMatch,
    _check_vectors,
    _hits,
    _require_active,
)
from recommender.selectors.similarity.execution import vector_cursor
from recommender.selectors.similarity.expansion import is_embedded
from recommender.selectors.similarity.look_statement import Probe, garment_options, probe_hits
from recommender.selectors.similarity.rows import rows_complete
from recommender.selectors.similarity.types import Query, query_vectors_array

GARMENT_NAMES = GROUP_NAMES  # what a shopper reads for each garment group (catalog.taxonomy)


def percent_box(box) -> dict[str, float] | None:
    """A (left, top, right, bottom) box in fractions as CSS percentages: left, top, width, height."""
    if box is None:
        return None
    left, top, right, bottom = box
    return {"left": left * 100, "top": top * 100, "width": (right - left) * 100, "height": (bottom - top) * 100}


class GarmentNotFound(LookupError):
    """No such garment on this look (another snapshot's, another version's, or none at all)."""


@dataclass(frozen=True)
class Garment:
    """One garment of a look as pages and the API show it. ``number`` counts from 1 in the look's
    order; ``id`` is the stored row's (None for an upload); box and outline in fractions of the photo."""

    number: int
    region: int
    group: str
    box: tuple[float, float, float, float]
    outline: list
    confidence: float
    id: int | None = None

    @property
    def name(self) -> str:
        return GARMENT_NAMES.get(self.group, self.group.replace("_", " ").capitalize())

    @property
    def svg_points(self) -> list[str]:
        """Each polygon of the outline as SVG ``points`` in a 0..1000 viewBox."""
        return [" ".join(f"{x * 1000:.1f},{y * 1000:.1f}" for x, y in polygon) for polygon in self.outline]

    @property
    def percent_box(self) -> dict[str, float]:
        return percent_box(self.box)


@dataclass(frozen=True)
class GarmentPick:
    """The item picked for one garment of a look."""

    garment: Garment
    match: ItemMatch


def _ordered(rows: Sequence[dict]) -> list[Garment]:
    """Garment records in the look's order (by the box's vertical centre, then left to right), numbered."""
    rows = sorted(rows, key=lambda r: ((r["box"][1] + r["box"][3]) / 2, r["box"][0], r["region"]))
    return [
        Garment(
            number=n,
            region=int(r["region"]),
            group=str(r["group"]),
            box=tuple(float(v) for v in r["box"]),
            outline=r.get("outline") or [],
            confidence=float(r.get("confidence") or 0.0),
            id=r.get("id"),
        )
        for n, r in enumerate(rows, start=1)
    ]


GARMENT_COLUMNS = ("id", "snapshot_id", "region", "group", "box", "outline", "confidence")

_GARMENT_TABLE = SnapshotGarment._meta
_GARMENTS_SQL = (
    f"SELECT {', '.join(connection.ops.quote_name(_GARMENT_TABLE.get_field(c).column) for c in GARMENT_COLUMNS)} "
    f"FROM {_GARMENT_TABLE.db_table} WHERE model_version_id = %s AND snapshot_id = ANY(%s::bigint[])"
)


def garment_lists(
    *, snapshot_ids: Sequence[int], model_version: ModelVersion | None = None
) -> dict[int, list[Garment]]:
    """The garments the serving version found on each of these snapshots, in each look's order (one query)."""
    version = _require_active(model_version)
    rows: dict[int, list[dict]] = {}
    # Read without the ORM: compiling the queryset cost 0.8 ms of a look's 10 ms budget (the query 0.2 ms).
    with connection.cursor() as cursor:
        cursor.execute(_GARMENTS_SQL, [int(version.pk), [int(i) for i in snapshot_ids]])
        for values in cursor.fetchall():
            row = dict(zip(GARMENT_COLUMNS, values, strict=True))
            if isinstance(row["outline"], str):  # Django leaves jsonb undecoded on its cursors
                row["outline"] = json.loads(row["outline"])
            rows.setdefault(row["snapshot_id"], []).append(row)
    return {snapshot_id: _ordered(found) for snapshot_id, found in rows.items()}


def garment_list(*, snapshot_id: int, model_version: ModelVersion | None = None) -> list[Garment]:
    """The garments the serving version found on a snapshot, in the look's order ([] when none)."""
    return garment_lists(snapshot_ids=[snapshot_id], model_version=model_version).get(snapshot_id, [])


def garments_from_records(records: Sequence[dict]) -> list[Garment]:
    """An upload's garments (the query worker's records) in the look's order."""
    return _ordered([{**r, "id": None} for r in records])


def _region_vectors(snapshot_id: int, version: ModelVersion, regions: Sequence[int]) -> dict[int, np.ndarray]:
    rows = SNAPSHOT.embedding.objects.filter(
        model_version_id=version.pk, snapshot_id=snapshot_id, region__in=list(regions)
    ).values_list("region", "vector")
    return {int(region): np.asarray(vector, dtype=np.float32) for region, vector in rows}


def garment_filters(group: str, filters: Filters, kinds: tuple[int, ...] | None = None) -> Filters | None:
    """The shopper's filters narrowed to the garment's kind (its group's categories, ``kinds`` when already
    read); None when nothing of that kind can pass them."""
    kinds = category_ids_for_group(group) if kinds is None else kinds
    if not kinds:
        return None
    allowed = tuple(sorted(set(kinds) & set(filters.category_ids))) if filters.category_ids else kinds
    return replace(filters, category_ids=allowed) if allowed else None


def _nearest_items(vectors: Sequence[np.ndarray], *, version, k, filters, exclude_ids, options, exact=False) -> list:
    """The k items nearest any of ``vectors`` (an item scores by its best one), with their rows."""
    query = Query(
        kind="item",
        model_version=version,
        k=k,
        filters=filters,
        vectors=query_vectors_array(vectors),
        exclude_ids=tuple(exclude_ids),
    )
    return rows_complete("item", _hits(query, options, exact=exact, hydrate=True))


def look_picks(
    *,
    snapshot_id: int | None = None,
    vectors: Sequence[Sequence[float]] | np.ndarray | None = None,
    garments: Sequence[dict] | None = None,
    filters: Filters | None = None,
    exclude_ids: Sequence[int] = (),
    model_version: ModelVersion | None = None,
    options: SearchOptions | None = None,
    look_garments: Sequence[Garment] | None = None,
    exact: bool = False,
) -> tuple[list[Garment], list[GarmentPick]]:
    """A look's garments and one item for each (a stored snapshot by id, or an upload's ``vectors`` with
    its ``garments`` records): among the garment's kind, the item nearest the garment, or nearest the whole
    photo among the whole photo's top ``RECOMMENDER_PICKS_WHOLE_PHOTO_TOP`` items (the serving rule over the
    two rows, the whole photo's side cut to one shared walk). Garments choose in order of size, so a small
    piece never takes the item a large one matches best; picks come back in the look's order. A garment
    with no item of its kind passing the filters has no pick. ``look_garments``: the stored look's
    :func:`garment_list`, when the caller has read it already; ``exact``: every search an exact scan (the
    reference answer of the benchmark). Raises :class:`NoActiveModel`, or
    :class:`NotEmbedded` for a stored
    snapshot without the version's vectors."""
    version = _require_active(model_version)
    if (snapshot_id is None) == (vectors is None):
        raise ValueError("give exactly one of snapshot_id or vectors")
    if vectors is not None:
        _check_vectors(vectors, version)
        vectors = np.asarray(vectors, dtype=np.float32)
    filters = filters or Filters()
    if snapshot_id is not None:
        found = (
            list(look_garments)
            if look_garments is not None
            else garment_list(snapshot_id=snapshot_id, model_version=version)
        )
    else:
        found = [g for g in garments_from_records(garments or []) if 0 < g.region < len(vectors)]
    if not found:
        return [], []
    # Garments choose by size. Garment i can lose at most i items to larger ones, so its pick is the best
    # free item among its own top i + 1 and the whole photo's top items of its kind (an item scores by the
    # nearer of the two rows): those lists hold the greedy answer, and one statement fetches them all.
    kinds = category_ids_by_group()
    searched: list[Garment] = []
    probes: list[Probe] = []
    for garment in sorted(found, key=lambda g: (-_area(g), g.number)):
        narrowed = garment_filters(garment.group, filters, kinds.get(garment.group, ()))
        if narrowed is None:
            continue
        probes.append(Probe(len(searched), garment.region, len(searched) + 1, narrowed.category_ids))
        searched.append(garment)
    if not probes:
        return found, []
    looked = probe_hits(
        version=version,
        probes=probes,
        filters=filters,
        exclude_ids=exclude_ids,
        snapshot_id=snapshot_id,
        vectors=vectors,
        options=options,
        exact_only=exact,
    )
    hits, whole = looked.found, looked.whole
    if snapshot_id is not None and not whole and not is_embedded("snapshot", version, snapshot_id):
        raise NotEmbedded()
    taken: set[int] = set()
    chosen: dict[int, tuple[int, float]] = {}
    for probe, garment in zip(probes, searched, strict=True):
        allowed = set(probe.kinds)
        candidates = dict(hits[probe.ord])
        for item_id, (dist, category_id) in whole.items():
            if category_id in allowed and dist < candidates.get(item_id, float("inf")):
                candidates[item_id] = dist
        for item_id, dist in sorted(candidates.items(), key=lambda pair: (pair[1], pair[0])):
            if item_id not in taken:
                taken.add(item_id)
                chosen[garment.number] = (item_id, dist)
                break
    rows = {item_id: looked.item(item_id) for item_id, _ in chosen.values()}
    picks = [
        GarmentPick(garment=g, match=ItemMatch(item=rows[chosen[g.number][0]], distance=chosen[g.number][1]))
        for g in found
        if g.number in chosen and rows[chosen[g.number][0]] is not None
    ]
    return found, picks


def _area(garment: Garment) -> float:
    left, top, right, bottom = garment.box
    return (right - left) * (bottom - top)


def item_list_for_garment(
    *,
    snapshot_id: int | None = None,
    garment_number: int | None = None,
    vector: Sequence[float] | np.ndarray | None = None,
    group: str | None = None,
    k: int | None = None,
    filters: Filters | None = None,
    model_version: ModelVersion | None = None,
    options: SearchOptions | None = None,
    exact: bool = False,
) -> tuple[Garment | None, list[ItemMatch]]:
    """ "More like this piece": the k items nearest one garment, among its kind's categories (``exact``: by
    an exact scan, the benchmark's reference).

    A stored look's garment by its number (:class:`GarmentNotFound` when the look has no such garment),
    or an upload's garment ``vector`` with its ``group`` (None: any category, e.g. a box the shopper drew).
    """
    from django.conf import settings

    version = _require_active(model_version)
    filters = filters or Filters()
    k = k or settings.RECOMMENDER_TOP_K
    garment = None
    if snapshot_id is not None:
        garment = next(
            (g for g in garment_list(snapshot_id=snapshot_id, model_version=version) if g.number == garment_number),
            None,
        )
        if garment is None:
            raise GarmentNotFound(f"snapshot {snapshot_id} has no garment {garment_number}")
        vectors = _region_vectors(snapshot_id, version, [garment.region])
        if garment.region not in vectors:
            raise NotEmbedded()
        vector, group = vectors[garment.region], garment.group
    elif vector is None:
        raise ValueError("give snapshot_id and garment_number, or a vector")
    else:
        _check_vectors([vector], version)
    narrowed = garment_filters(group, filters) if group else filters
    if narrowed is None:
        return garment, []
    walk = garment_options(options)
    hits = _nearest_items(
        [np.asarray(vector)],
        version=version,
        k=k,
        filters=narrowed,
        exclude_ids=(),
        options=replace(walk, ef_search=walk.ef_search_piece),
        exact=exact,
    )
    return garment, [ItemMatch(item=item, distance=dist) for _, dist, item in hits]


def matched_garments(
    *,
    matches: Sequence[SnapshotMatch],
    item_id: int | None = None,
    vector: Sequence[float] | np.ndarray | None = None,
    model_version: ModelVersion | None = None,
) -> dict[int, Garment]:
    """For item -> snapshots results: on each look, the garment nearest the item (the piece it matched by),
    by snapshot id; looks without garments are left out. The item is a stored one (``item_id``) or an
    upload's ``vector``. One statement over the results' own rows."""
    version = _require_active(model_version)
    if (item_id is None) == (vector is None):
        raise ValueError("give exactly one of item_id or vector")
    ids = [m.snapshot.pk for m in matches]
    if not ids:
        return {}
    dim, garments = int(version.dim), SnapshotGarment._meta.db_table
    if vector is not None:
        _check_vectors([vector], version)
        source, params = f"SELECT %b::vector({dim}) AS v", [np.asarray(vector, dtype=np.float32)]
    else:
        source = (
            f"SELECT i.vector::vector({dim}) AS v FROM {ITEM.table} i "
            f"WHERE i.model_version_id = %s AND i.{ITEM.fk} = %s"
        )
        params = [version.pk, item_id]
    with transaction.atomic(), vector_cursor() as cursor:
        cursor.execute(
            f"WITH q AS MATERIALIZED ({source}) "
            f"SELECT DISTINCT ON (e.{SNAPSHOT.fk}) e.{SNAPSHOT.fk}, e.region FROM q, {SNAPSHOT.table} e "
            f"JOIN {garments} g ON g.snapshot_id = e.{SNAPSHOT.fk} "
            "AND g.model_version_id = e.model_version_id AND g.region = e.region "
            f"WHERE e.model_version_id = %s AND e.{SNAPSHOT.fk} = ANY(%s) "
            f"ORDER BY e.{SNAPSHOT.fk}, e.vector::vector({dim}) <=> q.v, e.region",
            [*params, version.pk, ids],
        )
        best = {int(snapshot_id): int(region) for snapshot_id, region in cursor.fetchall()}
    found = garment_lists(snapshot_ids=list(best), model_version=version)
    return {
        snapshot_id: garment
        for snapshot_id, region in best.items()
        for garment in found.get(snapshot_id, [])
        if garment.region == region
    }


__all__ = [
    "GARMENT_NAMES",
    "Garment",
    "GarmentNotFound",
    "GarmentPick",
    "garment_filters",
    "garment_list",
    "garment_lists",
    "garments_from_records",
    "item_list_for_garment",
    "look_picks",
    "matched_garments",
    "percent_box",
]

"""How well "shop the look" answers posts whose curated items are known: the real selectors on a real catalog.

For each post (a snapshot with curated items and garments under the active version) it compares the
one-pick-per-garment answer (:func:`look_picks`) with today's whole-photo top k
(:func:`item_list_for_snapshot`), both run exactly as the pages run them:

- ``group_agreement``: the share of picks whose item's category is one of its garment group's categories
  (the issue's bar: at least 90%);
- ``found``: the share of the post's curated items among the answer (recall), and ``precision``: the share
  of the answer that is curated;
- ``kinds``: the share of the post's curated items whose kind (top-level category) the answer covers, and
  ``distinct_kinds``: kinds per answer (the six picks of one kind of the old answer show here);
- more like this piece: for each garment whose kind holds one of the post's items, the top k for that
  garment alone: ``piece_hit`` (one of those items among them) and ``piece_precision`` (the share of the k
  in that item's own category).

``manage.py measure_looks`` runs it on a catalog; ``python -m bench`` runs it on its scratch catalog.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.db.models import QuerySet

from catalog.models import Category, PostItem, Snapshot
from catalog.selectors import category_ids_for_group
from recommender.selectors import item_list_for_snapshot, model_version_active
from recommender.selectors.similarity.pieces import item_list_for_garment, look_picks


@dataclass
class LooksReport:
    posts: int  # posts measured (curated items and garments)
    skipped: int  # posts without garments (the answer is the whole-photo list) or without curated items
    k: int
    figures: dict[str, float]  # name -> value (percentages and counts per post)
    seconds: float

    def lines(self) -> list[str]:
        f = self.figures
        if not self.posts:
            return [f"no post measured (skipped {self.skipped}: no garments or no curated items)"]
        return [
            f"posts measured: {self.posts} (skipped {self.skipped}: no garments or no curated items); k = {self.k}",
            "| measure | one pick per garment | whole photo, top k |",
            "|---|---:|---:|",
            f"| answers per look | {f['picks_per_look']:.2f} | {f['top_per_look']:.2f} |",
            f"| kinds per answer (top-level categories) | {f['picks_distinct_kinds']:.2f} "
            f"| {f['top_distinct_kinds']:.2f} |",
            f"| curated items found (recall, %) | {f['picks_found']:.1f} | {f['top_found']:.1f} |",
            f"| answer curated (precision, %) | {f['picks_precision']:.1f} | {f['top_precision']:.1f} |",
            f"| curated items whose kind is covered (%) | {f['picks_kinds']:.1f} | {f['top_kinds']:.1f} |",
            f"| answer in its garment's categories (%) | {f['group_agreement']:.1f} | — |",
            f"more like this piece (top {self.k}, {int(f['pieces'])} garments whose kind holds a curated item): "
            f"a curated item found {f['piece_hit']:.1f}%, in that item's own category {f['piece_precision']:.1f}%",
        ]


def _roots() -> dict[int, int]:
    """Category id -> its top-level category's id (one query)."""
    parents = dict(Category.objects.values_list("id", "parent_id"))

    def root(cid: int) -> int:
        seen = set()
        while parents.get(cid) is not None and cid not in seen:
            seen.add(cid)
            cid = parents[cid]
        return cid

    return {cid: root(cid) for cid in parents}


def measure_looks(
    *,
    snapshots: QuerySet[Snapshot] | None = None,
    k: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> LooksReport:
    """The figures above over ``snapshots`` (default: every published snapshot with curated items)."""
    started = time.monotonic()
    version = model_version_active()
    rows = snapshots if snapshots is not None else Snapshot.objects.published()
    ids = list(rows.filter(post_items__isnull=False).distinct().order_by("pk").values_list("pk", flat=True))
    curated: dict[int, list[tuple[int, int | None]]] = {}
    for snapshot_id, item_id, category_id in PostItem.objects.filter(snapshot_id__in=ids).values_list(
        "snapshot_id", "item_id", "item__category_id"
    ):
        curated.setdefault(snapshot_id, []).append((item_id, category_id))
    roots = _roots()
    group_cats: dict[str, set[int]] = {}
    sums: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        sums.setdefault(name, []).append(value)

    measured = skipped = 0
    for n, snapshot_id in enumerate(ids, start=1):
        garments, picks = look_picks(snapshot_id=snapshot_id, model_version=version)
        items = curated.get(snapshot_id, [])
        if not garments or not items:
            skipped += 1
            continue
        measured += 1
        top = item_list_for_snapshot(snapshot_id=snapshot_id, k=k, model_version=version, expansion_n=0)
        truth = {item_id for item_id, _ in items}
        for name, answer in (("picks", [p.match.item for p in picks]), ("top", [m.item for m in top])):
            answer_ids = [i.pk for i in answer]
            kinds = {roots.get(i.category_id) for i in answer if i.category_id is not None}
            add(f"{name}_per_look", len(answer))
            add(f"{name}_distinct_kinds", len(kinds))
            add(f"{name}_found", 100.0 * len(truth & set(answer_ids)) / len(truth))
            add(f"{name}_precision", 100.0 * len(truth & set(answer_ids)) / max(1, len(answer_ids)))
            with_kind = [c for _, c in items if c is not None]
            covered = [c for c in with_kind if roots.get(c) in kinds]
            add(f"{name}_kinds", 100.0 * len(covered) / max(1, len(with_kind)))
        for pick in picks:
            allowed = group_cats.setdefault(pick.garment.group, set(category_ids_for_group(pick.garment.group)))
            add("group_agreement", 100.0 * (pick.match.item.category_id in allowed))
        for garment in garments:
            allowed = group_cats.setdefault(garment.group, set(category_ids_for_group(garment.group)))
            mine = [(item_id, c) for item_id, c in items if c in allowed]
            if not mine:
                continue
            _, matches = item_list_for_garment(
                snapshot_id=snapshot_id, garment_number=garment.number, k=k, model_version=version
            )
            found = {m.item.pk for m in matches}
            add("piece_hit", 100.0 * bool(found & {item_id for item_id, _ in mine}))
            own = {c for _, c in mine}
            add("piece_precision", 100.0 * sum(m.item.category_id in own for m in matches) / max(1, len(matches)))
            add("pieces_one", 1.0)
        if progress:
            progress(n, len(ids))
    figures = {name: float(np.mean(values)) for name, values in sums.items()}
    figures["pieces"] = float(len(sums.get("pieces_one", [])))
    for name in ("piece_hit", "piece_precision", "group_agreement"):
        figures.setdefault(name, float("nan"))
    return LooksReport(measured, skipped, k, figures, time.monotonic() - started)

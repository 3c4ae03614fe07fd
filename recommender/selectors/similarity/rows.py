"""Reading the results' catalog rows: in the search statement itself where it can be, else one ``in_bulk``."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from catalog.embedding_targets import target
from catalog.models import Item, Snapshot
from recommender.selectors.similarity.types import Kind

# (target id, cosine distance, catalog row or None when not read yet), best first
Hit = tuple[int, float, Item | Snapshot | None]


class RowReader:
    """Reads a result's catalog row (an item with its brand and category, as ``select_related``
    would; a snapshot) in the search statement itself, instead of a second query.

    The grouped statement becomes a CTE joined to the catalog tables; its order is kept. A
    result whose catalog row is gone (deleted meanwhile) drops out, as it would from ``in_bulk``.
    Django has no public way to build objects with their relations from a raw row, hence
    ``Model.from_db`` and the field caches here.
    """

    RELATED = {"item": ("brand", "category"), "snapshot": ()}  # read with the row, like select_related
    _cache: dict[str, RowReader] = {}

    def __init__(self, kind: Kind) -> None:
        self.model = target(kind).owner
        # (model, its field names in column order, the main model's foreign key to it or None)
        parts = [(self.model, None)]
        selects, joins = [], []
        for n, name in enumerate(self.RELATED[kind]):
            field = self.model._meta.get_field(name)
            parts.append((field.related_model, field))
            joins.append(f"LEFT JOIN {field.related_model._meta.db_table} r{n} ON r{n}.id = t.{field.column}")
        self.parts = [(model, [f.attname for f in model._meta.concrete_fields], fk) for model, fk in parts]
        for alias, (model, _, _) in zip(["t", *(f"r{n}" for n in range(len(joins)))], self.parts, strict=True):
            selects += [f'{alias}."{f.column}"' for f in model._meta.concrete_fields]
        self._reading = f"{', '.join(selects)} FROM r JOIN {self.model._meta.db_table} t ON t.id = r.target_id " + (
            " ".join(joins)
        )
        self.template = f"WITH r AS ({{sql}}) SELECT r.target_id, r.dist, {self._reading} ORDER BY r.dist, r.target_id"

    @classmethod
    def of(cls, kind: Kind) -> RowReader:
        if kind not in cls._cache:
            cls._cache[kind] = cls(kind)
        return cls._cache[kind]

    def wrap(self, sql: str) -> str:
        return self.template.replace("{sql}", sql, 1)

    def wrap_with(self, sql: str, columns: Sequence[str]) -> str:
        """``sql``'s rows (with a ``target_id``) as its ``columns`` then the catalog row's, in no set order."""
        return f"WITH r AS ({sql}) SELECT {', '.join(f'r.{c}' for c in columns)}, {self._reading}"

    def instance(self, values: Sequence) -> Item | Snapshot:
        start, main = 0, None
        for model, names, fk in self.parts:
            chunk = values[start : start + len(names)]
            start += len(names)
            obj = None if chunk[0] is None else model.from_db(connection.alias, names, chunk)
            if fk is None:
                main = obj
            else:
                fk.set_cached_value(main, obj)
        return main

    def hits(self, rows) -> list[Hit]:
        """The wrapped statement's rows as hits with their objects."""
        return [(int(r[0]), float(r[1]), self.instance(r[2:])) for r in rows]


def rows_complete(kind: Kind, hits: list[Hit]) -> list[Hit]:
    """Every hit with its catalog row: those not read by the statement (the item -> snapshots stream)
    in one ``in_bulk``; a hit whose row is gone drops out."""
    missing = [hit_id for hit_id, _, obj in hits if obj is None]
    if missing:
        related = RowReader.RELATED[kind]
        rows = target(kind).owner.objects
        found = (rows.select_related(*related) if related else rows).in_bulk(missing)
        hits = [(hit_id, dist, obj if obj is not None else found.get(hit_id)) for hit_id, dist, obj in hits]
    return [hit for hit in hits if hit[2] is not None]

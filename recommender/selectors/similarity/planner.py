"""How to run one search: a pure decision (no database), returned as a frozen :class:`SearchPlan`.

Strategies:

- ``EXACT``: an exact scan of the filtered rows (few rows pass the filters, or asked for).
- ``WALK``: one HNSW probe per query vector, grouped by target, on the caller's connection.
- ``SHARED``: the same walk with the query vectors split over helper connections
  (``RECOMMENDER_PROBE_CONNECTIONS``), the shares' top k merged; only outside the caller's
  transaction, since the helpers see committed rows only.
- ``STREAM``: item -> snapshots with one query vector: region rows read nearest first through a
  cursor until they name k distinct snapshots. Those are the true top k (any other snapshot's
  best region comes later), and the graph is walked only as far as that takes.

Exactness of the probes: snapshot -> items needs k rows per query region (an item missing from
its best region's top k has k better items ahead of it); k * regions region rows always name k
snapshots. The merge of shares is exact for the same reason (a target's best query vector lies in
one share, where it ranks as it does overall).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from catalog.embedding_targets import target
from recommender.selectors.similarity.types import Query, SearchOptions


class Strategy(Enum):
    EXACT = "exact"
    WALK = "walk"
    SHARED = "shared"
    STREAM = "stream"


@dataclass(frozen=True)
class FilterCount:
    """What the filter count found: matching rows (at most the cap) and whether a style graph is walked."""

    rows: int
    style_graph: bool


@dataclass(frozen=True)
class SearchPlan:
    strategy: Strategy
    ef_search: int  # hnsw.ef_search before it is raised to walk_rows
    walk_rows: int  # rows the walk must be able to return without iterative scan (0: grows on demand)
    probe_rows: int  # rows each probe fetches (k items per region; k * regions region rows)
    candidate_factor: int  # over-fetch of an out-of-order (relaxed_order) walk, re-sorted afterwards
    enable_sort: bool  # False keeps the planner from sorting every filtered row exactly
    exact_fallback: bool  # re-run exactly when the walk ends short of k
    iterative_scan: str
    max_scan_tuples: int
    shares: tuple[Query, ...] = ()

    @property
    def session_settings(self) -> dict[str, str]:
        """The search's settings for its transaction only (SET LOCAL); ``enable_sort`` only when turned off."""
        values = {
            "hnsw.ef_search": str(min(1000, max(int(self.ef_search), self.walk_rows))),
            "hnsw.iterative_scan": self.iterative_scan,
            "hnsw.max_scan_tuples": str(int(self.max_scan_tuples)),
        }
        if not self.enable_sort:
            values["enable_sort"] = "off"
        return values


def needs_filter_count(query: Query, options: SearchOptions, *, exact: bool) -> bool:
    """Whether the plan depends on how many rows pass the filters (then count first, capped)."""
    return query.filters.active and not exact and options.exact_below_rows > 0


def plan_search(
    query: Query,
    options: SearchOptions,
    *,
    exact: bool = False,
    count: FilterCount | None = None,
    helpers: int = 0,
    outside_transaction: bool = False,
) -> SearchPlan:
    """The plan of ``query``: strategy, walk breadth and row limits.

    ``count`` is the filter count when :func:`needs_filter_count` asked for one; ``helpers`` how
    many helper connections may take a share; ``outside_transaction`` whether the caller holds no
    transaction (and no uncommitted rows) of its own.
    """
    factor = 2 if options.iterative_scan == "relaxed_order" and not exact else 1
    stream = query.kind == "snapshot" and not exact and query.single_vector
    probe_rows = query.k if query.kind == "item" else query.k * query.stored_regions
    shares = query.split(1 + helpers) if outside_transaction and not stream else ()
    ef_search = int(getattr(options, target(query.kind).ef_search_option))
    enable_sort = not options.walk_only
    if count is not None:
        if count.rows < options.exact_below_rows:
            exact, stream = True, False  # few rows pass the filters: scanning them exactly is cheaper
        else:
            # The planner's estimate of the filters is poor and it would often sort every filtered row.
            enable_sort = False
            if count.style_graph:
                # A style's own graph is sparser around a query: a narrower walk finds the same rows
                # (docs/recommender.md, "Style filters walk their own graph").
                ef_search = max(1, round(ef_search * options.ef_search_style_factor))
    # A streamed walk grows on demand (iterative scan), so ef_search stays as configured; without
    # iterative scan the walk must be wide enough for every row it may have to return.
    walk_rows = 0 if stream and options.iterative_scan != "off" else probe_rows * factor
    if stream:
        strategy = Strategy.STREAM
    elif exact:
        strategy = Strategy.EXACT
    elif shares:
        strategy = Strategy.SHARED
    else:
        strategy = Strategy.WALK
    return SearchPlan(
        strategy=strategy,
        ef_search=ef_search,
        walk_rows=walk_rows,
        probe_rows=probe_rows,
        candidate_factor=factor,
        enable_sort=enable_sort,
        exact_fallback=options.exact_fallback and not exact,
        iterative_scan=options.iterative_scan,
        max_scan_tuples=options.max_scan_tuples,
        shares=shares if strategy is Strategy.SHARED else (),
    )

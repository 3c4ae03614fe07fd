"""The recommender app (RECOMMENDER_): result counts, HNSW index builds and searches, uploads.

Why each default was chosen, with the measurements, is in docs/recommender.md.
"""

from config import env
from workers.registry import EMBED_QUERY

# Results per recommendation, and the largest k the API accepts.
RECOMMENDER_TOP_K = env.get_int("RECOMMENDER_TOP_K", 6)
RECOMMENDER_MAX_K = env.get_int("RECOMMENDER_MAX_K", 50)

# --- Index builds (recommender.indexes) ---------------------------------------

# HNSW build parameters for each model version's partial index.
RECOMMENDER_HNSW_M = env.get_int("RECOMMENDER_HNSW_M", 16)
# The snapshot regions' index needs the better graph (overlapping windows), the item index the faster one.
RECOMMENDER_HNSW_EF_CONSTRUCTION = env.get_int("RECOMMENDER_HNSW_EF_CONSTRUCTION", 64)
RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS = env.get_int("RECOMMENDER_HNSW_EF_CONSTRUCTION_SNAPSHOTS", 128)
# "halfvec" (16-bit graph: smaller and faster to search, up to 4,000 dims) or "vector" (full
# precision, up to 2,000 dims).
RECOMMENDER_INDEX_PRECISION = env.get("RECOMMENDER_INDEX_PRECISION", "halfvec")
# A style with at least this many of a version's rows in a table, and at most this share of them,
# gets its own partial HNSW index there, built with the version's indexes.
RECOMMENDER_STYLE_INDEX_MIN_ROWS = env.get_int("RECOMMENDER_STYLE_INDEX_MIN_ROWS", 2000)
RECOMMENDER_STYLE_INDEX_MAX_SHARE = env.get_float("RECOMMENDER_STYLE_INDEX_MAX_SHARE", 0.5)
# A garment group (catalog.taxonomy.GROUP_CATEGORIES) with at least this many of a version's item rows
# gets its own partial HNSW index over its categories: a look's garment walks among its kind only.
RECOMMENDER_GARMENT_INDEX_MIN_ROWS = env.get_int("RECOMMENDER_GARMENT_INDEX_MIN_ROWS", 500)

# --- Searches (recommender.selectors) -----------------------------------------

# hnsw.ef_search of each region probe of snapshot -> items, and of the one probe of item ->
# snapshots, which walks wider: a look's many regions crowd around an item.
RECOMMENDER_EF_SEARCH = env.get_int("RECOMMENDER_EF_SEARCH", 40)
RECOMMENDER_EF_SEARCH_SNAPSHOTS = env.get_int("RECOMMENDER_EF_SEARCH_SNAPSHOTS", 200)
# A one-style filter walking that style's own graph uses each direction's ef_search times this: the
# style's rows are sparser, so a narrower walk finds the same nearest rows.
RECOMMENDER_EF_SEARCH_STYLE_FACTOR = env.get_float("RECOMMENDER_EF_SEARCH_STYLE_FACTOR", 0.4)
# pgvector >= 0.8: keep scanning the graph until enough rows pass the filters ("off" disables), up
# to this many tuples (hnsw.max_scan_tuples); a walk that still ends short reruns as an exact scan.
RECOMMENDER_ITERATIVE_SCAN = env.get("RECOMMENDER_ITERATIVE_SCAN", "strict_order")
RECOMMENDER_MAX_SCAN_TUPLES = env.get_int("RECOMMENDER_MAX_SCAN_TUPLES", 20000)
# Shop the look: a garment's pick is the item of its kind nearest the garment, or nearest the whole
# photo among the whole photo's top this many items (one walk for all garments; docs/recommender.md).
RECOMMENDER_PICKS_WHOLE_PHOTO_TOP = env.get_int("RECOMMENDER_PICKS_WHOLE_PHOTO_TOP", 50)
# ... and its walks give up after this many graph tuples (hnsw.max_scan_tuples): a walk that lost its way is
# walked again 5x wider, and a kind still too rare under the filters is ranked by an exact scan of its items.
RECOMMENDER_PICKS_MAX_SCAN_TUPLES = env.get_int("RECOMMENDER_PICKS_MAX_SCAN_TUPLES", 500)
# hnsw.ef_search of "more like this piece": its one walk (a garment's kind as a post-filter) must find the
# garment's own product line, where a look's picks re-walk a lost walk wider (docs/bench.md).
RECOMMENDER_EF_SEARCH_PIECE = env.get_int("RECOMMENDER_EF_SEARCH_PIECE", 80)
# With filters, fewer matching vector rows than this are ranked by an exact scan; more, by the HNSW walk.
RECOMMENDER_EXACT_BELOW_ROWS = env.get_int("RECOMMENDER_EXACT_BELOW_ROWS", 2000)
# Snapshot -> items probes the item index once per snapshot region. Query with this region scheme
# of ml.regions (a subset of the version's own scheme; "" = every stored region): fewer probes,
# nearly the same quality. Snapshots keep all their regions for item -> snapshots.
RECOMMENDER_SNAPSHOT_QUERY_REGIONS = env.get("RECOMMENDER_SNAPSHOT_QUERY_REGIONS", "multiscale16")
# Database connections one snapshot -> items search spreads its region probes over (the request's
# own + helpers kept by each web process); 1 = one statement on the request's connection.
RECOMMENDER_PROBE_CONNECTIONS = env.get_int("RECOMMENDER_PROBE_CONNECTIONS", 2)
# Alpha query expansion: re-query with the top-n results blended in (0 = off).
RECOMMENDER_QUERY_EXPANSION_N = env.get_int("RECOMMENDER_QUERY_EXPANSION_N", 0)

# --- Uploads (recommender.uploads) --------------------------------------------

# A shopper's photo is embedded by this task on this queue; the view waits at most this long for the
# vectors (and a search as long for a helper connection's share of its probes).
RECOMMENDER_QUERY_TASK = env.get("RECOMMENDER_QUERY_TASK", EMBED_QUERY.name)
RECOMMENDER_QUERY_QUEUE = env.get("RECOMMENDER_QUERY_QUEUE", EMBED_QUERY.queue)
RECOMMENDER_QUERY_TIMEOUT_S = env.get_float("RECOMMENDER_QUERY_TIMEOUT_S", 20.0)

# A shopper's photo is decoded by the web process (recommender.uploads): at most this many pixels (read
# from the header, before decoding; staff uploads keep CATALOG_MAX_IMAGE_PIXELS), scaled down to fit this
# side (the model's inputs are at most 608 px; 0 keeps the full size). Decoding holds about 4 bytes a
# pixel (5.5 with the scaling), so each process decodes at once only as many photos as fit in this many
# pixels (0: no limit; a larger photo is decoded alone); an upload that waits longer than this for room
# is a 503 with Retry-After. Measured in docs/reliability.md (python -m bench.upload_memory).
RECOMMENDER_UPLOAD_MAX_PIXELS = env.get_int("RECOMMENDER_UPLOAD_MAX_PIXELS", 40_000_000)
RECOMMENDER_UPLOAD_MAX_SIDE = env.get_int("RECOMMENDER_UPLOAD_MAX_SIDE", 1600)
RECOMMENDER_UPLOAD_DECODE_PIXELS = env.get_int("RECOMMENDER_UPLOAD_DECODE_PIXELS", 48_000_000)
RECOMMENDER_UPLOAD_DECODE_WAIT_S = env.get_float("RECOMMENDER_UPLOAD_DECODE_WAIT_S", 2.0)

"""The catalog app (CATALOG_): uploads, lists, thumbnails, importers, embedding requests."""

from config import env
from workers import registry

# Upload validation (catalog.validators): bytes and decoded pixels per image.
CATALOG_MAX_UPLOAD_BYTES = env.get_int("CATALOG_MAX_UPLOAD_BYTES", 15 * 1024 * 1024)
CATALOG_MAX_IMAGE_PIXELS = env.get_int("CATALOG_MAX_IMAGE_PIXELS", 40_000_000)
# Items or looks per page of the browse lists and the API.
CATALOG_PAGE_SIZE = env.get_int("CATALOG_PAGE_SIZE", 24)
# Thumbnails for lists and pages: JPEG, this many pixels wide (never enlarged).
CATALOG_THUMBNAIL_WIDTH = env.get_int("CATALOG_THUMBNAIL_WIDTH", 320)
# Embedding tasks are sent by name to this queue (by default the registry's, where EMBED_SNAPSHOTS and
# EMBED_ITEMS are routed), with at most this many ids per task.
CATALOG_EMBEDDING_QUEUE = env.get("CATALOG_EMBEDDING_QUEUE", registry.EMBEDDING)
CATALOG_EMBED_BATCH_SIZE = env.get_int("CATALOG_EMBED_BATCH_SIZE", 64)
# Importers commit after this many rows (a crash loses at most one batch).
CATALOG_IMPORT_BATCH_SIZE = env.get_int("CATALOG_IMPORT_BATCH_SIZE", 50)

"""The workers app (WORKERS_): the ml package it drives, the sweep, task time limits, bootstrap."""

from config import env

# Python package providing the ml contract (artifact, training, evaluation submodules); tests swap in a fake.
WORKERS_ML_PACKAGE = env.get("WORKERS_ML_PACKAGE", "ml")
# Images re-queued per sweep and kind.
WORKERS_SWEEP_BATCH = env.get_int("WORKERS_SWEEP_BATCH", 500)
# A pending image is re-enqueued by the sweep only after this long (its own on-commit task comes first).
WORKERS_SWEEP_GRACE_S = env.get_int("WORKERS_SWEEP_GRACE_S", 120)
# A pending image whose embedding was queued (or started) this long ago is queued again: its message was lost.
# Longer than a bulk import's backlog takes to drain, so the sweep never repeats work that is only waiting.
WORKERS_REQUEUE_AFTER_S = env.get_int("WORKERS_REQUEUE_AFTER_S", 30 * 60)
# A re-index job whose heartbeat is older than this is considered dead and resumed by the sweep.
WORKERS_REINDEX_STALE_S = env.get_int("WORKERS_REINDEX_STALE_S", 600)
# A running training job beats this often; one without a beat for WORKERS_TRAIN_STALE_S lost its worker and is
# marked interrupted (at a worker's start and by the sweep; never restarted on its own).
WORKERS_TRAIN_HEARTBEAT_S = env.get_float("WORKERS_TRAIN_HEARTBEAT_S", 10.0)
WORKERS_TRAIN_STALE_S = env.get_float("WORKERS_TRAIN_STALE_S", 60.0)
# Soft time limits of the embedding, shopper-query and training tasks.
WORKERS_EMBED_TIME_LIMIT_S = env.get_int("WORKERS_EMBED_TIME_LIMIT_S", 600)
WORKERS_QUERY_TIME_LIMIT_S = env.get_int("WORKERS_QUERY_TIME_LIMIT_S", 60)
WORKERS_TRAIN_TIME_LIMIT_S = env.get_int("WORKERS_TRAIN_TIME_LIMIT_S", 6 * 3600)
# A worker start builds the first model version when none exists.
WORKERS_BOOTSTRAP_ON_START = env.get_bool("WORKERS_BOOTSTRAP_ON_START", True)

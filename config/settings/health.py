"""GET /healthz (HEALTH_, config.health): how each process keeps its view of the workers."""

from config import env

# How long the background broadcast (inspect active_queues) waits for the workers' replies.
HEALTH_WORKER_REPLY_TIMEOUT_S = env.get_float("HEALTH_WORKER_REPLY_TIMEOUT_S", 1.0)
# Seconds between two broadcasts; /healthz reports the view's age, at most about this plus the timeout.
HEALTH_WORKER_REFRESH_S = env.get_float("HEALTH_WORKER_REFRESH_S", 5.0)
# A view older than this (its refresher is stuck) fails the workers check.
HEALTH_WORKER_MAX_AGE_S = env.get_float("HEALTH_WORKER_MAX_AGE_S", 30.0)

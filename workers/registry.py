"""Every Celery task of the project: its name, the queue it runs on and the Job kind it records, if any.

The one place these names are written. ``config.settings`` takes ``CELERY_TASK_ROUTES`` from
:func:`task_routes`, the tasks take their names from here, and the enqueue helpers look a
task up here (the web process sends tasks by name and never imports their modules). Plain
Python, no Django: settings import it.
"""

from __future__ import annotations

from dataclasses import dataclass

# Queues. A worker consumes some of them (`celery -A workers worker -Q ...`).
QUERIES = "queries"  # shoppers' uploads: low latency, never behind a re-index
EMBEDDING = "embedding"  # image vectors and re-indexing (the GPU/embedding box)
TRAINING = "training"  # building, training and evaluating model versions
DEFAULT = "default"  # small bookkeeping: health checks, the periodic sweep and checks


@dataclass(frozen=True)
class TaskSpec:
    """A task as the rest of the project sees it. ``job_kind``: the ``workers.models.JobKind`` value of
    the Job row a run keeps (``workers.jobs.JobTask``); None for tasks that keep no Job row."""

    name: str
    queue: str
    job_kind: str | None = None


ECHO = TaskSpec("workers.echo", DEFAULT)
EMBED_QUERY = TaskSpec("workers.embed_query", QUERIES)
EMBED_SNAPSHOTS = TaskSpec("workers.embed_snapshots", EMBEDDING)
EMBED_ITEMS = TaskSpec("workers.embed_items", EMBEDDING)
REINDEX_VERSION = TaskSpec("workers.reindex_version", EMBEDDING, job_kind="reindex")
ACTIVATE_VERSION = TaskSpec("workers.activate_version", EMBEDDING, job_kind="activate")
MODEL_BOOTSTRAP = TaskSpec("workers.model_bootstrap", TRAINING, job_kind="bootstrap")
TRAIN_VERSION = TaskSpec("workers.train_version", TRAINING, job_kind="train")
EVALUATE_VERSION = TaskSpec("workers.evaluate_version", TRAINING, job_kind="evaluate")
EMBEDDING_SWEEP = TaskSpec("workers.embedding_sweep", DEFAULT)
STYLE_GRAPHS_ENSURE = TaskSpec("workers.style_graphs_ensure", DEFAULT)
RETRAIN_CHECK = TaskSpec("workers.retrain_check", DEFAULT)

TASKS: tuple[TaskSpec, ...] = (
    ECHO,
    EMBED_QUERY,
    EMBED_SNAPSHOTS,
    EMBED_ITEMS,
    REINDEX_VERSION,
    ACTIVATE_VERSION,
    MODEL_BOOTSTRAP,
    TRAIN_VERSION,
    EVALUATE_VERSION,
    EMBEDDING_SWEEP,
    STYLE_GRAPHS_ENSURE,
    RETRAIN_CHECK,
)
QUEUES: tuple[str, ...] = (DEFAULT, QUERIES, EMBEDDING, TRAINING)

# Message priorities within a queue. On the Redis transport each priority step is a list of its own and a
# worker takes from the lowest number first (the reverse of AMQP's order); a message without a priority
# counts as 0. Posts saved in the admin or the API go ahead of a bulk import's backlog on the same queue.
PRIORITY_STEPS: tuple[int, ...] = (0, 3, 6, 9)  # kombu's default, named because the two below rely on it
EMBED_PRIORITIES: dict[str, int] = {"interactive": 0, "bulk": 9}

_BY_NAME = {task.name: task for task in TASKS}
_BY_JOB_KIND = {task.job_kind: task for task in TASKS if task.job_kind}


def task_routes() -> dict[str, dict[str, str]]:
    """``CELERY_TASK_ROUTES``: every task to its queue."""
    return {task.name: {"queue": task.queue} for task in TASKS}


def task_named(name: str) -> TaskSpec:
    """The task registered under this Celery name (KeyError for an unknown one)."""
    return _BY_NAME[name]


def task_for_job(kind: str) -> TaskSpec | None:
    """The task that runs jobs of this kind, or None when no task does (such jobs are not re-enqueued)."""
    return _BY_JOB_KIND.get(kind)

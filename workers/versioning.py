"""Version workflows run by tasks and management commands: bootstrap, switch (re-index + activate),
train -> evaluate -> promote, and the sweep's bootstrap / resume checks."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from recommender.models import IndexState, ModelVersion, ModelVersionStatus
from recommender.versions import (
    VersionSwitchError,
    version_activate,
    version_create,
    version_index_state_set,
    version_mark_failed,
    version_mark_ready,
    version_metrics_set,
)
from workers.models import Job, JobKind, JobStatus
from workers.services import job_enqueue, job_progress

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]


def bootstrap_if_needed() -> str:
    """Enqueue the first version's bootstrap when no usable version exists and none is being built."""
    usable = ModelVersion.objects.exclude(status=ModelVersionStatus.FAILED)
    if usable.exists():
        return "not needed"
    now = timezone.now()
    bootstraps = Job.objects.filter(kind=JobKind.BOOTSTRAP)
    if bootstraps.unfinished().filter(created_at__gte=now - timedelta(hours=1)).exists():
        return "already queued"
    if bootstraps.filter(status=JobStatus.FAILED, finished_at__gte=now - timedelta(minutes=15)).exists():
        return "failed recently; see the failed bootstrap job"  # no retry storm every minute
    job_enqueue(
        kind=JobKind.BOOTSTRAP, arguments={"backbone": settings.ML_BACKBONE, "model": settings.ML_BOOTSTRAP_MODEL}
    )
    return "queued"


_BOOTSTRAP_LOCK = 0x4C4F4F4B  # PostgreSQL advisory lock key: one bootstrap at a time, across workers


@contextmanager
def _advisory_lock(key: int):
    """Hold a session-level PostgreSQL advisory lock (waits for another holder to finish)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def bootstrap_first_version(
    *, backbone: str, model: str | None = None, job: Job | None = None, progress: Progress | None = None
) -> dict:
    """Create the first version (artifact under ML_ARTIFACTS_DIR/<name>/): ``model`` "shipped" (default:
    ``settings.ML_BOOTSTRAP_MODEL``), the trained model in the repository, or "pretrained", the off-the-shelf
    ``backbone``. Activate it if nothing is active (no vectors exist yet, so there is nothing to mix with)
    and embed every image for it.

    Serialised by an advisory lock: a second bootstrap (two workers starting at once) waits, then finds
    the version built and only checks that every image is embedded."""
    model = model or settings.ML_BOOTSTRAP_MODEL
    if model not in ("shipped", "pretrained"):
        raise ValueError(f"unknown bootstrap model {model!r}: 'shipped' or 'pretrained'")
    with _advisory_lock(_BOOTSTRAP_LOCK):
        return _bootstrap(model=model, backbone=backbone, job=job, progress=progress)


def _bootstrap_plan(model: str, backbone: str) -> dict:
    """What the bootstrap builds: the version's name prefix and fields, how to find it built already,
    and the function that writes its artifact."""
    from workers.ml_runtime import ml_module

    artifact = ml_module("artifact")
    if model == "pretrained":
        return {
            "prefix": f"pretrained-{backbone}",
            "existing": ModelVersion.objects.filter(is_pretrained_only=True, backbone=backbone),
            "fields": {"backbone": backbone, "is_pretrained_only": True, "training_counts": {"posts": 0}},
            "write": lambda out: artifact.create_pretrained(out, backbone=backbone, cache_dir=settings.ML_CACHE_DIR),
            "decision": "off-the-shelf backbone, no training",
            "metrics": None,
        }
    manifest = artifact.shipped_manifest()  # ArtifactError when the repository's copy is missing or corrupt
    prefix = f"shipped-{manifest['name']}"
    recipe = manifest.get("recipe") or {}
    return {
        "prefix": prefix,
        "existing": ModelVersion.objects.filter(name__startswith=f"{prefix}-", is_pretrained_only=False),
        "fields": {
            "backbone": manifest["model"]["backbone"],
            "is_pretrained_only": False,
            "training_counts": recipe.get("training_counts") or {"posts": 0},
        },
        "write": lambda out: artifact.create_shipped(out, cache_dir=settings.ML_CACHE_DIR),
        "decision": f"the trained model shipped in the repository ({manifest['name']}); not trained here",
        # its figures where it was measured (CCP-Posts val, docs/ml.md); the promotion gate measures afresh
        "metrics": {"shipped": manifest.get("metrics") or {}},
    }


def _bootstrap(*, model: str, backbone: str, job: Job | None, progress: Progress | None) -> dict:
    from workers.ml_runtime import embedder_for, ml_module
    from workers.training import version_artifact_record

    plan = _bootstrap_plan(model, backbone)
    existing = plan["existing"].exclude(status=ModelVersionStatus.FAILED).first()
    if existing is not None and existing.status != ModelVersionStatus.TRAINING:
        version = existing
        message = f"{version.name} exists"
    else:
        name = f"{plan['prefix']}-{timezone.now():%Y%m%d-%H%M%S}"
        version = existing or version_create(name=name, **plan["fields"])
        out_dir = Path(settings.ML_ARTIFACTS_DIR) / version.name
        shutil.rmtree(out_dir, ignore_errors=True)
        try:
            path = plan["write"](out_dir)
            version_artifact_record(version=version, path=path, config=ml_module("artifact").verify(path).to_dict())
        except Exception as exc:
            version_mark_failed(version=version, reason=f"building the {model} artifact failed: {exc}")
            raise
        if plan["metrics"] is not None:
            version_metrics_set(version=version, metrics=plan["metrics"])
        version_mark_ready(version=version, decision=plan["decision"])
        message = f"built {version.name}"
    if not ModelVersion.objects.active().exists() and version.status == ModelVersionStatus.READY:
        embedder_for(version)
        version_activate(version=version, require_complete=False)
        message += "; activated (no version was active)"
    version.refresh_from_db()
    if version.status == ModelVersionStatus.ACTIVE:
        # Resumable: images embedded before a crash are skipped.
        reindexed = reindex_and_complete(version, progress=progress or job_progress_callback(job))
        message += f"; {reindexed['done']} images embedded"
    return {"version_id": version.pk, "message": message}


def job_progress_callback(job: Job | None) -> Progress | None:
    """A ``progress(done, total, message)`` that reports to the job (None without a job)."""
    if job is None:
        return None
    return lambda done, total, message: job_progress(job=job, done=done, total=total, message=message)


def reindex_and_complete(version: ModelVersion, *, progress: Progress | None = None) -> dict:
    """Give ``version`` vectors for every image that lacks them (resumable), build its vector indexes,
    then mark its re-index complete, unless the re-index found its artifact broken and failed it.

    The one place a re-index outside a switch is marked complete; a switch marks it complete in
    its own transaction (``recommender.versions.version_activate``)."""
    from workers.embedding import reindex

    done = reindex(version=version, progress=progress)
    version.refresh_from_db()
    if version.status != ModelVersionStatus.FAILED:
        version_index_state_set(version=version, state=IndexState.COMPLETE)
    return done


def switch_to(version: ModelVersion, *, progress: Progress | None = None, attempts: int = 3) -> ModelVersion:
    """Make ``version`` active without a gap: embed it for every image (new rows beside the active version's),
    build its vector index, then switch in one transaction. While this runs, new uploads are embedded for
    both versions (index_state "indexing"). A version with a bad artifact is marked failed and the active
    one keeps serving."""
    from workers.embedding import reindex

    version.refresh_from_db()
    if version.status == ModelVersionStatus.ACTIVE:
        return version
    if version.status not in (ModelVersionStatus.READY, ModelVersionStatus.RETIRED):
        raise VersionSwitchError(f"version {version.name} is {version.status}; it cannot be activated")
    version_index_state_set(version=version, state=IndexState.INDEXING)
    last_error: VersionSwitchError | None = None
    try:
        for _ in range(attempts):
            reindex(version=version, progress=progress)  # first pass: everything; then only late arrivals
            try:
                return version_activate(version=version)
            except VersionSwitchError as exc:  # an image arrived between the re-index and the switch
                last_error = exc
        raise last_error or VersionSwitchError("activation failed")
    finally:
        version.refresh_from_db()
        if version.status != ModelVersionStatus.ACTIVE and version.index_state == IndexState.INDEXING:
            version_index_state_set(version=version, state=IndexState.NONE)


def resume_stale_reindex() -> list[int]:
    """Re-enqueue re-index/activate jobs whose worker died (heartbeat older than WORKERS_REINDEX_STALE_S)."""
    stale_before = timezone.now() - timedelta(seconds=settings.WORKERS_REINDEX_STALE_S)
    resumed = []
    for job in Job.objects.filter(
        kind__in=[JobKind.REINDEX, JobKind.ACTIVATE, JobKind.BOOTSTRAP],
        status=JobStatus.RUNNING,
        heartbeat_at__lt=stale_before,
    ):
        Job.objects.filter(pk=job.pk).update(
            status=JobStatus.FAILED, error="worker stopped answering; resumed as a new job", finished_at=timezone.now()
        )
        resumed.append(job_enqueue(kind=job.kind, arguments=job.arguments, model_version=job.model_version).pk)
    return resumed


def train_evaluate_promote(
    *, job: Job | None = None, progress: Callable[[float, str], None] | None = None, config_overrides=None
) -> dict:
    """Train, evaluate against the active version, promote only a winner (re-index + switch, on the
    embedding queue); a loser stays ``ready`` with its metrics and the reason.

    With a ``job``, the job links to the new version as soon as its row exists, and keeps a heartbeat
    while it runs (a run whose worker stops is marked interrupted: ``workers.training_jobs``)."""
    from workers.training import train_new_version
    from workers.training_jobs import training_heartbeat

    def link(version: ModelVersion) -> None:
        job.model_version = version
        Job.objects.filter(pk=job.pk).update(model_version=version)

    with training_heartbeat(job):
        version, heldout = train_new_version(
            progress=progress, config_overrides=config_overrides, on_version=link if job is not None else None
        )
        return _evaluate_and_promote(version, heldout)


def _evaluate_and_promote(version: ModelVersion, heldout: list) -> dict:
    from workers.training import evaluation_decide

    try:
        if not heldout:
            decision = "no held-out posts to evaluate on; kept as ready"
            version_mark_ready(version=version, decision=decision)
            return {"version_id": version.pk, "promoted": False, "decision": decision}
        promote, decision = evaluation_decide(version, heldout)
    except Exception as exc:
        version_mark_failed(version=version, reason=f"evaluation failed: {exc}")
        raise
    if promote:
        job_enqueue(kind=JobKind.ACTIVATE, arguments={"version_id": version.pk}, model_version=version)
    return {"version_id": version.pk, "promoted": promote, "decision": decision}


def evaluate_and_decide(version: ModelVersion, *, promote: bool = False) -> dict:
    """Evaluate on the held-out posts (the same split as training); optionally promote a winner."""
    from workers.training import evaluation_decide, split_posts, training_posts

    _, heldout = split_posts(training_posts(), settings.ML_HELDOUT_SHARE)
    if not heldout:
        return {"version_id": version.pk, "promoted": False, "decision": "no held-out posts to evaluate on"}
    wins, decision = evaluation_decide(version, heldout)
    version.refresh_from_db()
    promoted = bool(promote and wins and version.status != ModelVersionStatus.ACTIVE)
    if promoted:
        job_enqueue(kind=JobKind.ACTIVATE, arguments={"version_id": version.pk}, model_version=version)
    return {"version_id": version.pk, "promoted": promoted, "decision": decision}

"""Model version services: create, record artifacts and metrics, fail, activate, roll back, decide promotion.

The lifecycle: training -> evaluating -> ready -> active -> retired (or failed at any step).
Exactly one version is active (a partial unique constraint). Activation is one transaction
and refuses a version whose vectors do not cover every image the active version covers, so
shoppers never see a mix of old and new vectors or results that vanish. This module never
imports TensorFlow: the workers compute vectors; these functions only move rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from recommender.models import IndexState, ModelVersion
from recommender.models import ModelVersionStatus as Status


class VersionSwitchError(ValueError):
    """The requested activation or rollback is not allowed; the message says why."""


# --- create and update ---------------------------------------------------------------


def version_create(
    *,
    name: str,
    backbone: str,
    config: dict | None = None,
    is_pretrained_only: bool = False,
    training_counts: dict | None = None,
) -> ModelVersion:
    """A new version in status ``training`` (its artifact is being built)."""
    version = ModelVersion(
        name=name,
        backbone=backbone,
        config=config or {},
        is_pretrained_only=is_pretrained_only,
        training_counts=training_counts or {},
        status=Status.TRAINING,
    )
    version.full_clean()
    version.save()
    return version


def version_artifact_set(
    *, version: ModelVersion, artifact_path: str, checksum: str, dim: int, max_regions: int, config: dict | None = None
) -> ModelVersion:
    """Record the built artifact (path, checksum, shapes); the version moves on to ``evaluating``."""
    version.artifact_path = artifact_path
    version.artifact_checksum = checksum
    version.dim = dim
    version.max_regions = max_regions
    if config is not None:
        version.config = config
    version.trained_at = timezone.now()
    version.status = Status.EVALUATING
    version.full_clean()
    version.save()
    return version


def version_mark_ready(*, version: ModelVersion, decision: str = "") -> ModelVersion:
    """A usable version that does not serve (yet): kept for staff to inspect or activate."""
    ModelVersion.objects.filter(pk=version.pk).exclude(status=Status.ACTIVE).update(
        status=Status.READY, decision=decision or version.decision, updated_at=timezone.now()
    )
    version.refresh_from_db()
    return version


def version_mark_failed(*, version: ModelVersion, reason: str) -> bool:
    """Mark a version failed with its reason. The active version is never failed (it keeps serving);
    its error is recorded instead. Returns True when the status changed to failed."""
    reason = reason[:5000]
    changed = (
        ModelVersion.objects.filter(pk=version.pk)
        .exclude(status=Status.ACTIVE)
        .update(status=Status.FAILED, error=reason, updated_at=timezone.now())
    )
    if not changed:
        ModelVersion.objects.filter(pk=version.pk).update(error=reason, updated_at=timezone.now())
    version.refresh_from_db()
    return bool(changed)


def version_metrics_set(*, version: ModelVersion, metrics: dict, decision: str | None = None) -> ModelVersion:
    version.metrics = metrics
    version.evaluated_at = timezone.now()
    fields = ["metrics", "evaluated_at", "updated_at"]
    if decision is not None:
        version.decision = decision
        fields.append("decision")
    version.save(update_fields=fields)
    return version


def version_index_state_set(*, version: ModelVersion, state: str, progress: dict | None = None) -> ModelVersion:
    """Move the re-index state (none / indexing / complete); ``progress`` replaces the stored progress."""
    if state == IndexState.COMPLETE:
        fields = _index_complete(version, now=timezone.now())
    else:
        version.index_state = state
        fields = ["index_state"]
    fields.append("updated_at")
    if progress is not None:
        version.index_progress = progress
        fields.append("index_progress")
    version.save(update_fields=fields)
    return version


def _index_complete(version: ModelVersion, *, now) -> list[str]:
    """Mark the version's re-index complete on the instance; returns the fields for the caller's save.
    The one definition of "complete", used by a re-index's end and by the switch's transaction."""
    version.index_state = IndexState.COMPLETE
    version.indexed_at = now
    return ["index_state", "indexed_at"]


def version_index_progress_set(*, version: ModelVersion, done: int, total: int, failed: int = 0) -> None:
    """Store re-index progress on the row (one UPDATE; the admin shows it)."""
    progress = {"done": done, "total": total, "failed": failed, "updated_at": timezone.now().isoformat()}
    ModelVersion.objects.filter(pk=version.pk).update(index_progress=progress)
    version.index_progress = progress


# --- coverage (selectors used by the switch) ------------------------------------------


def version_missing_counts(*, version: ModelVersion, reference: ModelVersion | None) -> dict[str, int]:
    """Images the reference version has vectors for but ``version`` does not ({"snapshots": n, "items": m}).

    With no reference (fresh install), every image that is not failed counts as required.
    """
    from catalog.models import EmbeddingStatus, Item, ItemEmbedding, Snapshot, SnapshotEmbedding

    def missing(model, embedding_model, fk: str) -> int:
        has_new = Exists(embedding_model.objects.filter(**{fk: OuterRef("pk")}, model_version=version))
        queryset = model.objects.exclude(has_new)
        if reference is None:
            queryset = queryset.exclude(embedding_status=EmbeddingStatus.FAILED)
        else:
            has_old = Exists(embedding_model.objects.filter(**{fk: OuterRef("pk")}, model_version=reference))
            queryset = queryset.filter(has_old)
        return queryset.count()

    return {
        "snapshots": missing(Snapshot, SnapshotEmbedding, "snapshot"),
        "items": missing(Item, ItemEmbedding, "item"),
    }


def version_rollback_target() -> ModelVersion | None:
    """The version that served before the active one: the most recently activated retired version."""
    return (
        ModelVersion.objects.filter(status=Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at", "-pk")
        .first()
    )


# --- the switch -------------------------------------------------------------------------


def version_activate(*, version: ModelVersion, require_complete: bool = True) -> ModelVersion:
    """Make ``version`` the one serving shoppers, in one transaction.

    The previous active version becomes ``retired`` (its vectors stay, for rollback). With
    ``require_complete`` the switch is refused while ``version`` lacks vectors for any image the
    active version has, so no result disappears at the switch.
    """
    with transaction.atomic():
        # Lock every candidate row so two switches cannot interleave.
        locked = {v.pk: v for v in ModelVersion.objects.select_for_update().filter(status=Status.ACTIVE)}
        target = ModelVersion.objects.select_for_update().get(pk=version.pk)
        if target.status == Status.ACTIVE:
            return target
        if target.status not in (Status.READY, Status.RETIRED):
            raise VersionSwitchError(
                f"Version {target.name} is {target.get_status_display().lower()}; only a ready or retired "
                "version can be activated."
            )
        if not target.artifact_path or not target.dim:
            raise VersionSwitchError(f"Version {target.name} has no artifact recorded.")
        current = next(iter(locked.values()), None)
        if require_complete:
            missing = version_missing_counts(version=target, reference=current)
            if missing["snapshots"] or missing["items"]:
                raise VersionSwitchError(
                    f"Version {target.name} lacks vectors for {missing['snapshots']} snapshots and "
                    f"{missing['items']} items that the active version serves; re-index it first."
                )
        now = timezone.now()
        if current is not None:
            current.status = Status.RETIRED
            current.save(update_fields=["status", "updated_at"])
        target.status = Status.ACTIVE
        target.activated_at = now
        target.error = ""
        target.save(update_fields=["status", "activated_at", "error", "updated_at", *_index_complete(target, now=now)])
    version.refresh_from_db()
    return version


# --- promotion -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


def promotion_decide(
    *, candidate_metrics: dict, active_metrics: dict | None, metric: str, min_gain: float = 0.0
) -> PromotionDecision:
    """Promote only a candidate that beats the active version on ``metric`` by more than ``min_gain``.

    Both sides must be measured on the same held-out posts. No active version (or an active
    version never measured) means the candidate is promoted if its metric is a number. A
    missing or non-finite candidate metric is never promoted; ties are not promoted.
    """
    candidate = candidate_metrics.get(metric) if candidate_metrics else None
    if not isinstance(candidate, int | float) or not math.isfinite(candidate):
        return PromotionDecision(False, f"candidate has no {metric}; kept as ready")
    active = (active_metrics or {}).get(metric)
    if active is None:
        return PromotionDecision(True, f"no active version measured on {metric}; candidate {candidate:.4f} promoted")
    if not isinstance(active, int | float) or not math.isfinite(active):
        return PromotionDecision(True, f"active {metric} is not a number; candidate {candidate:.4f} promoted")
    if candidate > active + min_gain:
        return PromotionDecision(True, f"{metric} {candidate:.4f} beats active {active:.4f} (min gain {min_gain:g})")
    return PromotionDecision(
        False, f"{metric} {candidate:.4f} does not beat active {active:.4f} (min gain {min_gain:g}); kept as ready"
    )

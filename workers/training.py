"""Training data from the catalog, the held-out split, training, evaluation and the promotion decision.

Each published post (a snapshot with at least one curated item) is one class holding its
snapshot and its items; an item linked to several posts appears once per post. A fixed
share of posts (``ML_HELDOUT_SHARE``) is held out by hashing the post id, so the split is
the same on every run and a post never moves between sides as the catalog grows.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Count, Prefetch
from django.utils import timezone

from catalog.models import EmbeddingStatus, PostItem, Snapshot
from recommender.models import ModelVersion, ModelVersionStatus
from recommender.versions import (
    promotion_decide,
    version_artifact_set,
    version_create,
    version_mark_failed,
    version_mark_ready,
    version_metrics_set,
)
from workers.ml_runtime import artifact_dir, artifact_path_for_storage, embedder_for, ml_module

logger = logging.getLogger(__name__)


@dataclass
class TrainingPost:
    post_id: int
    snapshot_path: str
    item_paths: list[str] = field(default_factory=list)
    item_ids: list[int] = field(default_factory=list)


def is_heldout(post_id: int, share: float) -> bool:
    """Deterministic: the same post is always on the same side for a given share."""
    digest = hashlib.sha256(f"lookbook-heldout:{int(post_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def training_posts() -> list[TrainingPost]:
    """Published snapshots with at least one usable curated item, images not marked failed."""
    links = PostItem.objects.select_related("item").exclude(item__embedding_status=EmbeddingStatus.FAILED)
    snapshots = (
        Snapshot.objects.filter(is_published=True)
        .exclude(embedding_status=EmbeddingStatus.FAILED)
        .annotate(n_items=Count("post_items"))
        .filter(n_items__gt=0)
        .order_by("pk")
        .prefetch_related(Prefetch("post_items", queryset=links))
    )
    posts = []
    for snapshot in snapshots:
        items = [link.item for link in snapshot.post_items.all() if link.item.image]
        if snapshot.image and items:
            posts.append(
                TrainingPost(
                    post_id=snapshot.pk,
                    snapshot_path=snapshot.image.path,
                    item_paths=[item.image.path for item in items],
                    item_ids=[item.pk for item in items],
                )
            )
    return posts


def split_posts(posts: list[TrainingPost], share: float) -> tuple[list[TrainingPost], list[TrainingPost]]:
    train = [p for p in posts if not is_heldout(p.post_id, share)]
    heldout = [p for p in posts if is_heldout(p.post_id, share)]
    return train, heldout


def records_for(posts: list[TrainingPost]) -> list[tuple[str, int, str]]:
    """``(image_path, class_id, kind)`` rows for ``ml.training.train``: one class per post."""
    records = []
    for class_id, post in enumerate(posts):
        records.append((post.snapshot_path, class_id, "snapshot"))
        records.extend((path, class_id, "item") for path in post.item_paths)
    return records


# --- evaluation -----------------------------------------------------------------------------------


def evaluate_embedder(embedder, posts: list[TrainingPost]) -> dict:
    """Held-out metrics (percentages) of one embedder over these posts with ``ml.evaluation.evaluate_posts``
    (the CCP-Posts protocol on catalog posts); ``s2i_map21_seed`` is the promotion metric."""
    if not posts:
        raise ValueError("no held-out posts to evaluate on")
    evaluation = ml_module("evaluation")
    eval_posts = [evaluation.EvalPost(snapshot=p.snapshot_path, items=list(p.item_paths)) for p in posts]
    metrics = evaluation.evaluate_posts(embedder, eval_posts)
    return {**_jsonable(dict(metrics)), "heldout_posts": len(posts)}


def evaluate_against_active(version: ModelVersion, heldout: list[TrainingPost]) -> tuple[dict, dict | None]:
    """Metrics of ``version`` and of the active version on the same held-out posts."""
    metrics = evaluate_embedder(embedder_for(version), heldout)
    active = ModelVersion.objects.active().exclude(pk=version.pk).first()
    active_metrics = None
    if active is not None:
        active_metrics = {"version": active.name, **evaluate_embedder(embedder_for(active), heldout)}
    return metrics, active_metrics


def evaluation_decide(version: ModelVersion, heldout: list[TrainingPost]) -> tuple[bool, str]:
    """Evaluate, store the metrics and the decision; the version ends ``ready`` (or stays active)."""
    metrics, active_metrics = evaluate_against_active(version, heldout)
    decision = promotion_decide(
        candidate_metrics=metrics,
        active_metrics=active_metrics,
        metric=settings.ML_PROMOTION_METRIC,
        min_gain=settings.ML_PROMOTION_MIN_GAIN,
    )
    stored = {**metrics, "active": active_metrics}
    version_metrics_set(version=version, metrics=stored, decision=decision.reason)
    if version.status != ModelVersionStatus.ACTIVE:
        version_mark_ready(version=version, decision=decision.reason)
    return decision.promote, decision.reason


# --- training -----------------------------------------------------------------------------------------


def model_config(**overrides):
    """The training config (``ml.config.ModelConfig``) from settings."""
    config_module = ml_module("config")
    values = {"backbone": settings.ML_BACKBONE}
    if settings.ML_TRAIN_IMAGE_SIZE:
        values["item_size"] = settings.ML_TRAIN_IMAGE_SIZE
    values.update(overrides)
    return config_module.ModelConfig(**values)


def training_start(config_overrides=None):
    """Where a new version's training starts: ``(config, embedder or None, description)``.

    With ``ML_TRAIN_FROM=active`` (the default) and a trained active version (the shipped model included),
    from a fresh copy of its weights (training changes them in place), so its config, and its garment
    parser, carry over; otherwise, or with explicit config overrides, from the ImageNet backbone.
    """
    active = ModelVersion.objects.active().first()
    if settings.ML_TRAIN_FROM == "active" and not config_overrides and active and not active.is_pretrained_only:
        embedder = ml_module("artifact").load(artifact_dir(active))
        return embedder.config, embedder, f"version {active.name}"
    return model_config(**(config_overrides or {})), None, "imagenet"


def train_new_version(
    *,
    progress: Callable[[float, str], None] | None = None,
    config_overrides=None,
    on_version: Callable[[ModelVersion], None] | None = None,
):
    """Train a version from the catalog's published posts; returns (version, heldout posts).

    ``on_version`` is called with the new version as soon as its row exists, before training starts (the
    job links to it, so staff see which version is being trained). The version ends in ``evaluating``
    with its artifact recorded; the caller evaluates it.
    """
    posts = training_posts()
    train, heldout = split_posts(posts, settings.ML_HELDOUT_SHARE)
    if len(train) < 2:
        raise ValueError(
            f"need at least 2 published posts with items to train on, found {len(train)} (plus {len(heldout)} held out)"
        )
    config, start, started_from = training_start(config_overrides)
    counts = {
        "posts": len(posts),
        "train_posts": len(train),
        "heldout_posts": len(heldout),
        "train_images": sum(1 + len(p.item_paths) for p in train),
        "heldout_images": sum(1 + len(p.item_paths) for p in heldout),
        "heldout_share": settings.ML_HELDOUT_SHARE,
        "last_post_id": max(p.post_id for p in posts),
        "started_from": started_from,
    }
    name = f"trained-{timezone.now():%Y%m%d-%H%M%S}"
    version = version_create(name=name, backbone=config.backbone, config=config.to_dict(), training_counts=counts)
    if on_version is not None:
        on_version(version)
    out_dir = Path(settings.ML_ARTIFACTS_DIR) / name
    shutil.rmtree(out_dir, ignore_errors=True)
    training = ml_module("training")
    started = time.monotonic()
    extra = {}
    if settings.ML_TRAIN_EPOCHS and hasattr(training, "TrainOptions"):
        extra["options"] = training.TrainOptions(epochs=settings.ML_TRAIN_EPOCHS)
    feature_cache = Path(settings.ML_CACHE_DIR) / "features" / name
    try:
        train_metrics = training.train(
            records_for(train),
            config,
            out_dir,
            val_records=records_for(heldout) or None,
            progress=progress,
            seed=0,
            cache_dir=feature_cache,
            backbone_cache_dir=settings.ML_CACHE_DIR,
            **({"embedder": start} if start is not None else {}),
            **extra,
        )
    except Exception as exc:
        version_mark_failed(version=version, reason=f"training failed: {exc}")
        raise
    finally:
        shutil.rmtree(feature_cache, ignore_errors=True)
    counts["train_seconds"] = round(time.monotonic() - started, 1)
    counts["train_metrics"] = _jsonable(train_metrics)
    version.training_counts = counts
    version.save(update_fields=["training_counts", "updated_at"])
    version_artifact_record(version=version, path=out_dir)
    return version, heldout


def version_artifact_record(*, version: ModelVersion, path: Path, config: dict | None = None) -> None:
    """Record a built artifact on its version: where it is stored, its checksum and, from loading
    it, its shapes (the version moves on to ``evaluating``)."""
    artifact = ml_module("artifact")
    embedder = artifact.load(path)
    version_artifact_set(
        version=version,
        artifact_path=artifact_path_for_storage(path),
        checksum=artifact.checksum(path),
        dim=int(embedder.dim),
        max_regions=int(embedder.max_regions),
        config=config,
    )


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def new_posts_since_last_training() -> int:
    """Published posts created after the newest trained version (all of them if none was trained)."""
    last = ModelVersion.objects.filter(is_pretrained_only=False).exclude(status=ModelVersionStatus.FAILED).first()
    posts = Snapshot.objects.filter(is_published=True, post_items__isnull=False).distinct()
    if last is not None:
        posts = posts.filter(created_at__gt=last.created_at)
    return posts.count()

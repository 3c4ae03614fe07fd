from __future__ import annotations

from django.db import models
from django.db.models import Q


class ModelVersionStatus(models.TextChoices):
    TRAINING = "training", "Training"
    EVALUATING = "evaluating", "Evaluating"
    READY = "ready", "Ready"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"


class IndexState(models.TextChoices):
    NONE = "none", "Not indexed"
    INDEXING = "indexing", "Indexing"
    COMPLETE = "complete", "Complete"


class ModelVersionQuerySet(models.QuerySet):
    def active(self) -> ModelVersionQuerySet:
        """Only the version that serves shoppers (at most one row)."""
        return self.filter(status=ModelVersionStatus.ACTIVE)

    def embedding_targets(self) -> ModelVersionQuerySet:
        """Versions every new image is embedded for: the active one and any being re-indexed."""
        return self.filter(
            Q(status=ModelVersionStatus.ACTIVE)
            | Q(index_state=IndexState.INDEXING, status__in=[ModelVersionStatus.READY, ModelVersionStatus.RETIRED])
        )


class ModelVersion(models.Model):
    """One trained (or off-the-shelf) descriptor model and where its artifact lives.

    Exactly one version is active at a time (a partial unique constraint). Vectors of
    every version live side by side in the catalog's embedding tables, so a switch
    never loses the previous version's vectors.
    """

    name = models.CharField(max_length=100, unique=True)
    backbone = models.CharField(max_length=50)
    config = models.JSONField(default=dict, blank=True, help_text="Full ml.config.ModelConfig as a dict.")
    is_pretrained_only = models.BooleanField(
        default=False, help_text="Off-the-shelf ImageNet backbone without training on posts."
    )
    artifact_path = models.CharField(max_length=500, blank=True)
    artifact_checksum = models.CharField(max_length=64, blank=True)
    dim = models.PositiveIntegerField(null=True, blank=True, help_text="Descriptor dimension.")
    max_regions = models.PositiveSmallIntegerField(default=1, help_text="Descriptors per snapshot (region 0 = global).")
    status = models.CharField(max_length=20, choices=ModelVersionStatus.choices, default=ModelVersionStatus.TRAINING)
    training_counts = models.JSONField(
        default=dict, blank=True, help_text="Posts/images used for training and held out."
    )
    metrics = models.JSONField(default=dict, blank=True, help_text="Metrics on the held-out split.")
    error = models.TextField(blank=True)
    decision = models.TextField(blank=True, help_text="The last promotion decision and why.")
    index_state = models.CharField(max_length=10, choices=IndexState.choices, default=IndexState.NONE)
    index_progress = models.JSONField(
        default=dict, blank=True, help_text="Re-index progress: done/total images, failed, updated_at."
    )
    indexed_at = models.DateTimeField(null=True, blank=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    objects = ModelVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="recommender_one_active_model_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"

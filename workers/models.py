"""Background job tracking: one row per long-running or failure-prone task run, shown in the admin."""

from __future__ import annotations

from django.db import models

from workers import registry


class JobKind(models.TextChoices):
    """What a job does; the values of task-run kinds are the registry's (``workers.registry``)."""

    EMBED = "embed", "Embed images"
    REINDEX = registry.REINDEX_VERSION.job_kind, "Re-index a model version"
    ACTIVATE = registry.ACTIVATE_VERSION.job_kind, "Activate a model version"
    BOOTSTRAP = registry.MODEL_BOOTSTRAP.job_kind, "Build the pretrained model"
    TRAIN = registry.TRAIN_VERSION.job_kind, "Train a model version"
    EVALUATE = registry.EVALUATE_VERSION.job_kind, "Evaluate a model version"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class JobQuerySet(models.QuerySet):
    def unfinished(self) -> JobQuerySet:
        """Jobs queued or running."""
        return self.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])


class Job(models.Model):
    """A background job: what it does (kind + arguments), where it is (status, progress) and why it failed.

    ``arguments`` holds the task's keyword arguments, so a failed job can be re-enqueued as it was.
    """

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    model_version = models.ForeignKey(
        "recommender.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    arguments = models.JSONField(default=dict, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))

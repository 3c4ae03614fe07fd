"""Admin for background jobs: status, progress (elapsed, time left) and errors; failed jobs can be retried."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from workers.models import Job, JobStatus
from workers.progress import progress_text, time_text
from workers.services import job_retry


def _times(job: Job) -> dict:
    finished = job.finished_at if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None
    return {
        "done": job.progress_done,
        "total": job.progress_total,
        "started_at": job.started_at,
        "finished_at": finished,
        "now": timezone.now(),
    }


def job_progress_display(job: Job) -> str:
    """``"412/1000 (41%), 9 min elapsed, about 13 min left"`` (a finished job: how long it took)."""
    return progress_text(**_times(job))


def job_time_display(job: Job) -> str:
    """``"9 min elapsed, about 13 min left"``; ``""`` before the job starts."""
    return time_text(**_times(job))


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "version_link",
        "progress",
        "message",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["message", "error", "celery_task_id"]
    actions = ["retry"]
    list_select_related = ["model_version"]
    # Nothing is edited here; the version shows as a link (in place of its select box).
    exclude = ["model_version"]
    readonly_fields = [
        "id",
        "kind",
        "status",
        "version_link",
        "progress",
        *(f.name for f in Job._meta.fields if f.name not in ("id", "kind", "status", "model_version")),
    ]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: Job) -> str:
        return job_progress_display(obj)

    @admin.display(description="model version", ordering="model_version")
    def version_link(self, obj: Job) -> str:
        version = obj.model_version
        if version is None:
            return "-"
        url = reverse("admin:recommender_modelversion_change", args=[version.pk])
        return format_html('<a href="{}">{}</a>', url, version)

    @admin.action(description="Retry (enqueue again with the same arguments)")
    def retry(self, request, queryset) -> None:
        retried = 0
        for job in queryset.filter(status__in=[JobStatus.FAILED, JobStatus.RUNNING, JobStatus.QUEUED]):
            try:
                job_retry(job=job)
                retried += 1
            except ValueError as exc:
                self.message_user(request, str(exc), messages.WARNING)
        self.message_user(request, f"{retried} job(s) queued again.")

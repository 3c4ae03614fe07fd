"""Admin for background jobs: status, progress and errors; failed jobs can be retried."""

from __future__ import annotations

from django.contrib import admin, messages

from workers.models import Job, JobStatus
from workers.services import job_retry


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "model_version",
        "progress",
        "message",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["message", "error", "celery_task_id"]
    actions = ["retry"]
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="progress")
    def progress(self, obj: Job) -> str:
        percent = obj.progress_percent
        return "-" if percent is None else f"{obj.progress_done}/{obj.progress_total} ({percent}%)"

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

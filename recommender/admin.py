"""Admin for model versions: metrics, status, re-index progress; a "Retrain now" button and actions queue
the workers' jobs."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from recommender.models import ModelVersion
from recommender.versions import version_rollback_target
from workers.admin import job_progress_display, job_time_display
from workers.models import Job, JobKind
from workers.services import job_enqueue
from workers.training_jobs import TrainingAlreadyQueued, training_enqueue


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "status",
        "is_pretrained_only",
        "backbone",
        "dim",
        "promotion_metric",
        "index_state",
        "index_progress_display",
        "current_job",
        "created_at",
        "activated_at",
    ]
    list_filter = ["status", "is_pretrained_only", "backbone"]
    search_fields = ["name"]
    actions = ["retrain_now", "evaluate", "activate", "reindex", "rollback"]
    readonly_fields = [
        "name",
        "backbone",
        "is_pretrained_only",
        "status",
        "decision",
        "error",
        "metrics_display",
        "training_counts_display",
        "config_display",
        "artifact_path",
        "artifact_checksum",
        "dim",
        "max_regions",
        "index_state",
        "index_progress_display",
        "current_job",
        "created_at",
        "trained_at",
        "evaluated_at",
        "indexed_at",
        "activated_at",
    ]
    exclude = ["config", "metrics", "training_counts", "index_progress"]

    class Media:
        css = {"all": ["css/admin.css"]}  # the Retrain now button (no inline style: the CSP)

    def has_add_permission(self, request) -> bool:
        return False  # versions come from training or the bootstrap

    def get_urls(self):
        retrain = self.admin_site.admin_view(self.retrain_view)  # staff only, CSRF-checked
        return [path("retrain/", retrain, name="recommender_modelversion_retrain"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        training = Job.objects.unfinished().filter(kind=JobKind.TRAIN).select_related("model_version").first()
        extra_context = {
            **(extra_context or {}),
            "can_retrain": self.has_change_permission(request),
            "training_job": training,
            "training_job_url": training and reverse("admin:workers_job_change", args=[training.pk]),
            "training_job_progress": training and job_progress_display(training),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def retrain_view(self, request):
        """The changelist's "Retrain now" button (POST): queue a training run unless one is unfinished."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        self._retrain(request)
        return HttpResponseRedirect(reverse("admin:recommender_modelversion_changelist"))

    def _retrain(self, request) -> None:
        try:
            job = training_enqueue()
        except TrainingAlreadyQueued as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            f"Training queued as job #{job.pk}; the new version appears here when it starts, "
            "with its progress and an estimate of the time left.",
            messages.SUCCESS,
        )

    @admin.display(description="s2i mAP@21 (held out)")
    def promotion_metric(self, obj: ModelVersion) -> str:
        value = (obj.metrics or {}).get("s2i_map21_seed")
        return "-" if value is None else f"{value:.4f}"

    @admin.display(description="re-index progress")
    def index_progress_display(self, obj: ModelVersion) -> str:
        progress = obj.index_progress or {}
        if not progress.get("total"):
            return "-"
        return f"{progress.get('done', 0)}/{progress['total']} ({progress.get('failed', 0)} failed)"

    @admin.display(description="running job")
    def current_job(self, obj: ModelVersion) -> str:
        job = obj.jobs.unfinished().order_by("-created_at").first()
        if job is None:
            return "-"
        percent = job.progress_percent
        label = f"{job.get_kind_display()} ({job.status}{'' if percent is None else f', {percent}%'})"
        url = reverse("admin:workers_job_change", args=[job.pk])
        times = job_time_display(job)
        return format_html('<a href="{}">{}</a>{}', url, label, f": {times}" if times else "")

    def _pretty(self, value) -> str:
        return format_html("<pre>{}</pre>", json.dumps(value or {}, indent=2, sort_keys=True))

    @admin.display(description="metrics")
    def metrics_display(self, obj: ModelVersion) -> str:
        return self._pretty(obj.metrics)

    @admin.display(description="training data")
    def training_counts_display(self, obj: ModelVersion) -> str:
        return self._pretty(obj.training_counts)

    @admin.display(description="config")
    def config_display(self, obj: ModelVersion) -> str:
        return self._pretty(obj.config)

    @admin.action(description="Retrain now (new version from all published posts)")
    def retrain_now(self, request, queryset) -> None:
        self._retrain(request)

    @admin.action(description="Evaluate on the held-out posts (no switch)")
    def evaluate(self, request, queryset) -> None:
        for version in queryset:
            job_enqueue(kind=JobKind.EVALUATE, arguments={"version_id": version.pk}, model_version=version)
        self.message_user(request, f"Evaluation queued for {queryset.count()} version(s).")

    @admin.action(description="Activate (re-index, then switch)")
    def activate(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        version = queryset.get()
        if version.status not in ("ready", "retired"):
            self.message_user(
                request,
                f"{version.name} is {version.status}; only ready or retired versions can be activated.",
                messages.ERROR,
            )
            return
        job_enqueue(kind=JobKind.ACTIVATE, arguments={"version_id": version.pk}, model_version=version)
        self.message_user(request, f"Activation of {version.name} queued: it serves once its vectors are complete.")

    @admin.action(description="Re-index (embed images missing this version's vectors)")
    def reindex(self, request, queryset) -> None:
        for version in queryset.exclude(status="failed"):
            job_enqueue(kind=JobKind.REINDEX, arguments={"version_id": version.pk}, model_version=version)
        self.message_user(request, "Re-index queued.")

    @admin.action(description="Roll back to the previously active version")
    def rollback(self, request, queryset) -> None:
        target = version_rollback_target()
        if target is None:
            self.message_user(request, "There is no previously active version to roll back to.", messages.ERROR)
            return
        job_enqueue(kind=JobKind.ACTIVATE, arguments={"version_id": target.pk}, model_version=target)
        self.message_user(request, f"Rollback to {target.name} queued.")

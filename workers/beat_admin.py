"""django-celery-beat's admin, kept as the package ships it except where staff input gave a 500.

Registered in place of the package's classes by ``WorkersConfig.ready`` (docs/reliability.md,
"Hostile input"). What the package's admin did:

- A crontab field its validator refuses is still set on the instance the form shows again, and the
  read-only "human readable" field asks celery to parse it: ``-1`` raises celery's
  ``ParseException``, which is not a ``ValueError``, so the page was a 500. Values the validator
  lets through but celery refuses (``7`` as a day of the week) were saved, and beat could not
  schedule them.
- The periodic-task form read ``cleaned_data["task"]`` after that field had failed its own check
  (longer than 200 characters): a ``KeyError``.
- A deletion the database refuses (a row still refers to the object) was an ``IntegrityError``.
"""

from __future__ import annotations

import logging

from celery import schedules
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpResponseRedirect
from django.urls import reverse
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

logger = logging.getLogger(__name__)

CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def crontab_description(crontab: CrontabSchedule | None) -> str:
    """The schedule in words, or its fields with a note when celery cannot read them (a row saved
    before this check, or written outside the admin); ``""`` for no schedule."""
    if crontab is None:
        return ""
    try:
        return crontab.human_readable
    except (schedules.ParseException, ValueError) as exc:
        return f"{crontab} (celery cannot read this schedule: {exc})"


class RefuseDeletionOnIntegrityErrorMixin:
    """A deletion the database refuses is a message on the object's page, not a 500.

    Django deletes the rows that cascade first only where a key is not nullable; PostgreSQL checks
    the others at commit, so a periodic task saved with the schedule meanwhile makes it fail there.
    """

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except IntegrityError:
            logger.warning("deleting %s %s was refused by the database", self.opts.model_name, object_id, exc_info=True)
            self.message_user(
                request,
                f"The {self.opts.verbose_name} was not deleted: other rows still refer to it. "
                "Reload the page to see what uses it now.",
                level=messages.ERROR,
            )
            change = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
            return HttpResponseRedirect(change)


class CrontabScheduleForm(forms.ModelForm):
    """Each cron field is also read by celery's parser, which beat uses to schedule the task."""

    class Meta:
        model = CrontabSchedule
        fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")

    def _clean_cron_field(self, name: str) -> str:
        value = self.cleaned_data[name]
        try:
            schedules.crontab(**{name: value})
        except (schedules.ParseException, ValueError) as exc:
            # Raised here, the value never reaches the instance that the form shows again.
            message = "Celery cannot read this value: %(reason)s"
            raise ValidationError(message, code="invalid", params={"reason": exc}) from exc
        return value

    def clean_minute(self) -> str:
        return self._clean_cron_field("minute")

    def clean_hour(self) -> str:
        return self._clean_cron_field("hour")

    def clean_day_of_month(self) -> str:
        return self._clean_cron_field("day_of_month")

    def clean_month_of_year(self) -> str:
        return self._clean_cron_field("month_of_year")

    def clean_day_of_week(self) -> str:
        return self._clean_cron_field("day_of_week")


class PeriodicTaskForm(beat_admin.PeriodicTaskForm):
    def clean(self):
        if "task" in self.errors:
            # The field's own error (too long) is the answer; the package's clean reads the value.
            return forms.ModelForm.clean(self)
        return super().clean()


class PeriodicTaskAdmin(RefuseDeletionOnIntegrityErrorMixin, beat_admin.PeriodicTaskAdmin):
    form = PeriodicTaskForm

    @admin.display(description="Crontab translation")
    def crontab_translation(self, obj: PeriodicTask) -> str:
        return crontab_description(obj.crontab)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The package's own view, with each crontab described by crontab_description.
        extra_context = {
            **(extra_context or {}),
            "readable_crontabs": {c.pk: crontab_description(c) for c in CrontabSchedule.objects.all()},
        }
        return admin.ModelAdmin.changeform_view(self, request, object_id, form_url, extra_context)


class CrontabScheduleAdmin(RefuseDeletionOnIntegrityErrorMixin, beat_admin.CrontabScheduleAdmin):
    form = CrontabScheduleForm

    # Found on the admin before the model, so the list and the form show this instead of the property.
    @admin.display(description="Human readable")
    def human_readable(self, obj: CrontabSchedule) -> str:
        return crontab_description(obj)


class IntervalScheduleAdmin(RefuseDeletionOnIntegrityErrorMixin, beat_admin.IntervalScheduleAdmin):
    pass


class SolarScheduleAdmin(RefuseDeletionOnIntegrityErrorMixin, beat_admin.SolarScheduleAdmin):
    pass


class ClockedScheduleAdmin(RefuseDeletionOnIntegrityErrorMixin, beat_admin.ClockedScheduleAdmin):
    pass


ADMINS = {
    PeriodicTask: PeriodicTaskAdmin,
    CrontabSchedule: CrontabScheduleAdmin,
    IntervalSchedule: IntervalScheduleAdmin,
    SolarSchedule: SolarScheduleAdmin,
    ClockedSchedule: ClockedScheduleAdmin,
}


def register(site: admin.AdminSite = admin.site) -> None:
    """Replace the package's admin classes on ``site`` by these (after the admin's autodiscover)."""
    for model, model_admin in ADMINS.items():
        if site.is_registered(model):
            site.unregister(model)
        site.register(model, model_admin)

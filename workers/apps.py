from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Background jobs"

    def ready(self) -> None:
        # django-celery-beat's admin with this project's fixes (it imports the package's admin first).
        from workers import beat_admin

        beat_admin.register()

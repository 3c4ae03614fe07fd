import pytest
from django.db import IntegrityError, connection

from recommender.models import ModelVersion, ModelVersionStatus


@pytest.mark.django_db
def test_vector_extension_is_created_by_migrations():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        (version,) = cursor.fetchone()
    major, minor = (int(part) for part in version.split(".")[:2])
    assert (major, minor) >= (0, 8)


@pytest.mark.django_db
def test_only_one_model_version_can_be_active():
    ModelVersion.objects.create(name="a", backbone="x", status=ModelVersionStatus.ACTIVE)
    ModelVersion.objects.create(name="b", backbone="x", status=ModelVersionStatus.READY)
    with pytest.raises(IntegrityError):
        ModelVersion.objects.create(name="c", backbone="x", status=ModelVersionStatus.ACTIVE)


@pytest.mark.django_db
def test_no_model_changes_without_migrations():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()

import io

import pytest
from django.core.management import call_command

from catalog.models import Brand, Style, Tag


@pytest.mark.django_db
def test_models_match_their_migrations():
    # Style, Brand and Tag share an abstract base: their tables must stay as migrated.
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "No changes detected" in out.getvalue()


@pytest.mark.parametrize(("model", "length"), [(Style, 80), (Brand, 120), (Tag, 80)])
def test_named_models_keep_their_field_lengths(model, length):
    assert model._meta.get_field("name").max_length == length
    assert model._meta.get_field("slug").max_length == length
    assert model._meta.ordering == ["name"]
    assert str(model(name="Boho")) == "Boho"

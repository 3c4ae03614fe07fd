"""Admin forms: picture uploads go through ``catalog.validators`` at form-validation time.

Validating in the form (not at save time) means a bad file re-renders the page with a
message naming the file and the reason, every other field kept, and nothing written.
"""

from __future__ import annotations

from pathlib import Path

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile

from catalog.models import Brand, Category, Item, PostItem, Snapshot
from catalog.services.images import DuplicateImageError, ensure_not_duplicate
from catalog.services.posts import NewItem
from catalog.validators import CleanImage, validate_image_upload

IMAGE_HELP = "JPEG, PNG or WebP. Stored as RGB with the EXIF orientation applied."


def _validate_upload(upload: UploadedFile, *, model: type[Item] | type[Snapshot], exclude_pk: int | None) -> CleanImage:
    clean = validate_image_upload(upload, name=upload.name)
    ensure_not_duplicate(model=model, clean=clean, exclude_pk=exclude_pk)
    return clean


def _url_field(label: str) -> forms.URLField:
    return forms.URLField(label=label, max_length=500, required=False, assume_scheme="https")


class _ImageUploadForm(forms.ModelForm):
    """The ``image`` upload is validated by the catalog validator; the result is ``self.clean_image_value``.

    The form never writes the upload to the row itself: the services store the cleaned picture.
    """

    # A plain FileField: Django's ImageField would answer with its own generic message first. Empty files
    # too are left to the validator, whose message names the file ("look.jpg: is empty.").
    image = forms.FileField(label="Image", help_text=IMAGE_HELP, widget=AdminFileWidget, allow_empty_file=True)

    image_model: type[Item] | type[Snapshot]
    clean_image_value: CleanImage | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["image"]
        if self.instance.pk and self.instance.image:
            field.required = False
            field.initial = self.instance.image
            field.widget.is_required = True  # hides the "clear" checkbox: a row always keeps a picture

    def _get_validation_exclusions(self):
        exclusions = super()._get_validation_exclusions()
        exclusions.add("image")  # checked above; the row gets its picture from the services
        return exclusions

    def clean_image(self):
        value = self.cleaned_data.get("image")
        if isinstance(value, UploadedFile):
            self.clean_image_value = _validate_upload(value, model=self.image_model, exclude_pk=self.instance.pk)
        return self.instance.image  # unchanged on the instance; the services attach clean_image_value


class SnapshotAdminForm(_ImageUploadForm):
    image_model = Snapshot
    source_url = _url_field("Source URL")

    class Meta:
        model = Snapshot
        fields = [
            "title",
            "person_name",
            "person_age",
            "person_occupation",
            "styles",
            "tags",
            "brands",
            "source_url",
            "is_published",
        ]


class ItemAdminForm(_ImageUploadForm):
    image_model = Item
    product_url = _url_field("Product URL")

    class Meta:
        model = Item
        fields = ["name", "brand", "category", "styles", "price", "product_url"]


class PostItemInlineForm(forms.ModelForm):
    """One curated item of a post: pick an existing item, or upload a new one with its name and facts."""

    new_image = forms.FileField(
        label="…or upload a new item",
        required=False,
        help_text=IMAGE_HELP,
        widget=forms.ClearableFileInput,
        allow_empty_file=True,  # the validator names the empty file
    )
    new_name = forms.CharField(label="New item name", max_length=200, required=False, help_text="Default: file name")
    new_brand = forms.ModelChoiceField(Brand.objects.all(), label="New item brand", required=False)
    new_category = forms.ModelChoiceField(
        Category.objects.select_related("parent"), label="New item category", required=False
    )
    new_price = forms.DecimalField(label="New item price", max_digits=10, decimal_places=2, min_value=0, required=False)
    new_product_url = _url_field("New item URL")

    clean_new_image_value: CleanImage | None = None

    class Meta:
        model = PostItem
        fields = ["item"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["item"].required = False
        self.fields["item"].label = "Existing item"

    def clean_new_image(self):
        upload = self.cleaned_data.get("new_image")
        if isinstance(upload, UploadedFile):
            try:
                self.clean_new_image_value = _validate_upload(upload, model=Item, exclude_pk=None)
            except DuplicateImageError as exc:
                raise ValidationError(
                    f"{exc.messages[0]} Pick it as the existing item instead.", code="duplicate"
                ) from exc
        return upload

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("DELETE"):
            return cleaned
        picked, uploaded = cleaned.get("item"), cleaned.get("new_image")
        if picked and uploaded:
            raise ValidationError("Pick an existing item or upload a new one, not both.", code="both")
        if not picked and not uploaded and not self.errors and self.has_changed():
            raise ValidationError("Pick an existing item or upload a new item image.", code="empty")
        if uploaded and not cleaned.get("new_name"):
            cleaned["new_name"] = Path(uploaded.name).stem.replace("_", " ").replace("-", " ")[:200] or "Item"
        return cleaned

    def post_entry(self) -> Item | NewItem | None:
        """What this row adds to the post: the picked item, a new item to create, or nothing."""
        data = self.cleaned_data
        if self.clean_new_image_value is not None:
            return NewItem(
                image=self.clean_new_image_value,
                name=data["new_name"],
                brand=data.get("new_brand"),
                category=data.get("new_category"),
                price=data.get("new_price"),
                product_url=data.get("new_product_url") or "",
            )
        return data.get("item")

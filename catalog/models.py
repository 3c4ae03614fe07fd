"""Catalog data: posts (a snapshot and its curated items) and their descriptors.

Descriptors live in per-image embedding tables keyed by model version, so vectors of
several versions coexist: a new version is filled completely before it is switched
on, and the previous one stays for rollback. The vector column has no fixed
dimension (versions may differ); each version gets its own partial HNSW index on
``(vector::halfvec(dim))`` by default (``RECOMMENDER_INDEX_PRECISION``) WHERE
model_version_id = <id> (see recommender.indexes).
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from pgvector.django import VectorField


class NamedModel(models.Model):
    """A named, slugged label (style, brand, tag); subclasses set the field lengths of their own table."""

    name = models.CharField(max_length=80, unique=True)
    slug = models.SlugField(max_length=80, unique=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Style(NamedModel):
    class Meta(NamedModel.Meta):
        pass


class Brand(NamedModel):
    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=120, unique=True)

    class Meta(NamedModel.Meta):
        pass


class Tag(NamedModel):
    class Meta(NamedModel.Meta):
        pass


class Category(models.Model):
    """A product category; ``parent`` makes a tree (shoes > sneakers) so filters work at either level."""

    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=80, unique=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["parent", "name"], name="catalog_category_unique_name_in_parent"),
            models.CheckConstraint(condition=~Q(parent=models.F("pk")), name="catalog_category_not_own_parent"),
        ]

    def __str__(self) -> str:
        return f"{self.parent} > {self.name}" if self.parent_id else self.name


class EmbeddingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ImageRecord(models.Model):
    """Fields shared by every catalog image: stored file facts and the embedding state."""

    image = models.ImageField(upload_to="images/%Y/%m/", width_field="width", height_field="height")
    width = models.PositiveIntegerField(editable=False, default=0)
    height = models.PositiveIntegerField(editable=False, default=0)
    content_hash = models.CharField(
        max_length=64,
        unique=True,
        editable=False,
        help_text="SHA-256 of the decoded RGB pixels (after EXIF orientation): identical pictures are detected.",
    )
    thumbnail = models.ImageField(upload_to="thumbs/%Y/%m/", blank=True, editable=False)
    source_key = models.CharField(
        max_length=255, unique=True, null=True, blank=True, help_text="Importer identity, for idempotent re-imports."
    )
    embedding_status = models.CharField(
        max_length=10, choices=EmbeddingStatus.choices, default=EmbeddingStatus.PENDING, db_index=True
    )
    embedding_error = models.TextField(blank=True)
    embedded_at = models.DateTimeField(null=True, blank=True)
    # When a message to embed this image was last sent or picked up by a worker (None: none is out). The
    # sweep leaves a pending image with a recent mark alone (catalog.services.embedding_queue).
    embedding_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class ItemQuerySet(models.QuerySet):
    def in_styles(self, style_ids):
        """Items having any of the styles ``style_ids`` (rows repeat per matching style)."""
        return self.filter(styles__in=style_ids)

    def in_categories(self, category_ids):
        """Items in any of the exact categories ``category_ids`` (expand subtrees with catalog.selectors)."""
        return self.filter(category__in=category_ids)

    def in_brands(self, brand_ids):
        """Items of any of the brands ``brand_ids``."""
        return self.filter(brand__in=brand_ids)


class SnapshotQuerySet(models.QuerySet):
    def published(self):
        """Snapshots shown on the public pages."""
        return self.filter(is_published=True)

    def in_styles(self, style_ids):
        """Snapshots having any of the styles ``style_ids`` (rows repeat per matching style)."""
        return self.filter(styles__in=style_ids)

    def in_brands(self, brand_ids):
        """Snapshots tagged with any of the brands ``brand_ids`` (rows repeat per matching brand)."""
        return self.filter(brands__in=brand_ids)

    def in_categories(self, category_ids):
        """Snapshots with a curated item in any of the exact categories ``category_ids`` (rows repeat per item)."""
        return self.filter(items__category__in=category_ids)


class Item(ImageRecord):
    name = models.CharField(max_length=200)
    brand = models.ForeignKey(Brand, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    styles = models.ManyToManyField(Style, blank=True, related_name="items")
    price = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    product_url = models.URLField(max_length=500, blank=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="catalog_item_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Snapshot(ImageRecord):
    title = models.CharField(max_length=200)
    person_name = models.CharField(max_length=120, blank=True)
    person_age = models.PositiveSmallIntegerField(null=True, blank=True, validators=[MaxValueValidator(130)])
    person_occupation = models.CharField(max_length=120, blank=True)
    styles = models.ManyToManyField(Style, blank=True, related_name="snapshots")
    tags = models.ManyToManyField(Tag, blank=True, related_name="snapshots")
    brands = models.ManyToManyField(Brand, blank=True, related_name="snapshots")
    source_url = models.URLField(max_length=500, blank=True)
    is_published = models.BooleanField(default=True, db_index=True)
    items = models.ManyToManyField(Item, through="PostItem", blank=True, related_name="snapshots")

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(person_age__isnull=True) | Q(person_age__lte=130), name="catalog_snapshot_person_age_range"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class PostItem(models.Model):
    """The curated link: an expert picked this item for this snapshot."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="post_items")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="post_items")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "item"], name="catalog_postitem_unique")]

    def __str__(self) -> str:
        return f"{self.snapshot_id} -> {self.item_id}"


class SnapshotEmbedding(models.Model):
    """One descriptor of a snapshot under one model version; region 0 is the global descriptor."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="embeddings")
    model_version = models.ForeignKey("recommender.ModelVersion", on_delete=models.CASCADE, related_name="+")
    region = models.PositiveSmallIntegerField(default=0)
    vector = VectorField()
    # The snapshot's style ids, kept by database triggers (migration 0004), whatever the writer:
    # a one-style filter then matches a per-style partial HNSW index (recommender.indexes).
    style_ids = ArrayField(models.BigIntegerField(), default=list, blank=True, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "model_version", "region"], name="catalog_snapshotembedding_unique"
            )
        ]
        indexes = [models.Index(fields=["model_version", "snapshot"])]

    def __str__(self) -> str:
        return f"snapshot {self.snapshot_id} region {self.region} (model version {self.model_version_id})"


class SnapshotGarment(models.Model):
    """One garment the parser found on a snapshot under one model version (docs/recommender.md, "Shop the look").

    Its descriptor is the snapshot's embedding row ``region`` of the same version; both are written in
    one transaction by the embedding worker (``catalog.services.embeddings``) and go with the version
    (re-index, rollback, deletion). ``box`` and ``outline`` are in fractions of the photo's width and
    height (the stored image after EXIF orientation), so they scale with any rendition of it.
    """

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="garments")
    model_version = models.ForeignKey("recommender.ModelVersion", on_delete=models.CASCADE, related_name="+")
    region = models.PositiveSmallIntegerField(help_text="The snapshot embedding row that describes this garment.")
    group = models.CharField(max_length=40, help_text="The parser's garment group (ml.garments.GROUPS).")
    # (left, top, right, bottom), fractions of the photo's width / height
    box = ArrayField(models.FloatField(), size=4)
    # the garment's outline: a list of polygons (a pair of shoes has two), each [[x, y], ...] in fractions
    outline = models.JSONField(default=list, blank=True)
    confidence = models.FloatField(help_text="Mean parser probability over the garment's pixels.")
    area = models.FloatField(help_text="The garment's share of the photo's pixels.")

    class Meta:
        ordering = ["snapshot", "model_version", "region"]
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "model_version", "region"], name="catalog_snapshotgarment_unique"
            ),
            models.CheckConstraint(condition=Q(region__gte=1), name="catalog_snapshotgarment_region_not_whole"),
        ]
        indexes = [models.Index(fields=["model_version", "snapshot"])]

    def __str__(self) -> str:
        return f"{self.group} on snapshot {self.snapshot_id} (model version {self.model_version_id})"


class ItemEmbedding(models.Model):
    """The descriptor of an item under one model version."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="embeddings")
    model_version = models.ForeignKey("recommender.ModelVersion", on_delete=models.CASCADE, related_name="+")
    vector = VectorField()
    # The item's style ids, kept by database triggers (see SnapshotEmbedding.style_ids).
    style_ids = ArrayField(models.BigIntegerField(), default=list, blank=True, editable=False)
    # The item's category id, kept by database triggers (catalog migration 0008): each garment group's
    # partial HNSW index selects its rows by it (recommender.indexes).
    category_id = models.BigIntegerField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "model_version"], name="catalog_itemembedding_unique")]
        indexes = [
            models.Index(fields=["model_version", "item"]),
            models.Index(fields=["model_version", "category_id"], name="catalog_ite_model_v_cat_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} (model version {self.model_version_id})"

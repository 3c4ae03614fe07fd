"""Staff admin: posts (a snapshot with its items inline), items, and the taxonomy.

Thin adapters: forms validate pictures through ``catalog.validators``; saving calls the
services in ``catalog.services`` (which queue embeddings after commit).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from catalog.forms import ItemAdminForm, PostItemInlineForm, SnapshotAdminForm
from catalog.models import Brand, Category, Item, PostItem, Snapshot, SnapshotGarment, Style, Tag
from catalog.selectors import category_ids_with_descendants
from catalog.services.embedding_queue import embeddings_requeue
from catalog.services.garments import post_item_from_garment, snapshot_tags_accept, snapshot_tags_suggested
from catalog.services.items import item_create, item_update
from catalog.services.posts import post_create, post_update
from catalog.taxonomy import GROUP_NAMES

IMAGE_FACTS = ("preview", "width", "height", "content_hash", "source_key")
EMBEDDING_FACTS = ("embedding_status", "embedding_error", "embedded_at", "created_at", "updated_at")


def _thumb(obj, size: int) -> str:
    if not obj or not (obj.thumbnail or obj.image):
        return "—"
    url = (obj.thumbnail or obj.image).url
    # Sized by static/css/admin.css: the Content-Security-Policy allows no inline style.
    return format_html('<img src="{}" alt="" class="admin-thumb admin-thumb--{}" loading="lazy">', url, size)


class _KnownIdsOnly:
    """Django's autocomplete widgets re-render a submitted value by querying for it, and a value that is
    not an id (a NUL byte, a word) raises there: a 500 instead of the form's own "not a valid choice"."""

    def optgroups(self, name, value, attr=None):
        target = self.field.remote_field.model._meta.pk
        ids = []
        for v in value:
            try:
                target.to_python(v)
            except ValidationError:
                continue
            ids.append(v)
        return super().optgroups(name, ids, attr)


class _AutocompleteSelect(_KnownIdsOnly, AutocompleteSelect):
    pass


class _AutocompleteSelectMultiple(_KnownIdsOnly, AutocompleteSelectMultiple):
    pass


class SafeAutocompleteMixin:
    """``autocomplete_fields`` with widgets that ignore a submitted value that cannot be an id."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _AutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _AutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ImageRecordAdminMixin(SafeAutocompleteMixin):
    """Thumbnails, the image and embedding facts, and the re-queue action, shared by items and snapshots.

    ``requeue_as`` names this model's argument to ``embeddings_requeue``.
    """

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [*IMAGE_FACTS, *EMBEDDING_FACTS]
    actions = ["requeue_embeddings"]
    list_per_page = 50
    requeue_as: str

    class Media:
        css = {"all": ["css/admin.css"]}

    @admin.display(description="Image")
    def thumb(self, obj) -> str:
        return _thumb(obj, 80)

    @admin.display(description="Preview")
    def preview(self, obj) -> str:
        return _thumb(obj, 320)

    def _fieldsets(self, obj, *editable):
        """The editable sections, then (on an existing row) the read-only image and embedding facts."""
        if obj is None:
            return list(editable)
        return [*editable, ("Image facts", {"fields": IMAGE_FACTS}), ("Embedding", {"fields": EMBEDDING_FACTS})]

    @admin.action(description="Queue embeddings again")
    def requeue_embeddings(self, request, queryset):
        items, snapshots = embeddings_requeue(**{self.requeue_as: queryset})
        self.message_user(
            request, f"Queued embeddings again for {items + snapshots} rows (marked pending).", messages.SUCCESS
        )


class CategoryTreeFilter(admin.SimpleListFilter):
    """Category filter that includes subcategories (choosing "Shoes" lists sneakers too).

    Items: in the category; snapshots: with a curated item in it (the querysets' ``in_categories``).
    """

    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return [(str(c.pk), str(c)) for c in Category.objects.select_related("parent")]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isascii() or not self.value().isdigit():
            # The admin answers this with the unfiltered list and its "?e=1" error, not a 500.
            raise IncorrectLookupParameters(f"{self.parameter_name} must be a category id")
        category = Category.objects.filter(pk=self.value()).first()
        if category is None:
            return queryset.none()
        # a snapshot repeats once per curated item in the subtree
        return queryset.in_categories(category_ids_with_descendants([category.pk])).distinct()


class ItemCategoryTreeFilter(CategoryTreeFilter):
    """Snapshots with at least one item in the category (or below it)."""

    title = "item category"
    parameter_name = "item_category"


class PostItemInline(SafeAutocompleteMixin, admin.TabularInline):
    model = PostItem
    form = PostItemInlineForm
    autocomplete_fields = ["item"]
    fields = ["thumb", "item", "new_image", "new_name", "new_brand", "new_category", "new_price", "new_product_url"]
    readonly_fields = ["thumb"]
    extra = 3
    verbose_name = "item of this post"
    verbose_name_plural = "items of this post (pick existing items or upload new ones)"

    @admin.display(description="Image")
    def thumb(self, obj) -> str:
        return _thumb(obj.item if obj and obj.item_id else None, 80)


@admin.register(Snapshot)
class SnapshotAdmin(ImageRecordAdminMixin, admin.ModelAdmin):
    """The post page: the snapshot with its items inline, written by the post services."""

    form = SnapshotAdminForm
    inlines = [PostItemInline]
    list_display = ["thumb", "title", "person_name", "item_count", "is_published", "embedding_status", "created_at"]
    list_display_links = ["thumb", "title"]
    list_filter = ["embedding_status", "is_published", "styles", "brands", ItemCategoryTreeFilter, "tags"]
    search_fields = ["title", "person_name", "person_occupation", "source_key", "content_hash"]
    autocomplete_fields = ["styles", "tags", "brands"]
    requeue_as = "snapshots"

    readonly_fields = [*ImageRecordAdminMixin.readonly_fields, "garments"]

    def get_fieldsets(self, request, obj=None):
        post = ("Post", {"fields": ["image", "title", "styles", "tags", "brands", "source_url", "is_published"]})
        person = ("Person", {"fields": ["person_name", "person_age", "person_occupation"]})
        fieldsets = self._fieldsets(obj, post, person)
        if obj is not None:
            fieldsets.insert(2, ("Garments found by the active model", {"fields": ["garments"]}))
        return fieldsets

    # -- garments: shown on the saved snapshot; an item from one in one click; suggested tags --------
    @staticmethod
    def _garments(obj) -> list[SnapshotGarment]:
        found = SnapshotGarment.objects.filter(snapshot=obj, model_version__status="active")
        return sorted(found, key=lambda g: ((g.box[1] + g.box[3]) / 2, g.region))  # the look's order, top first

    @admin.display(description="Garments")
    def garments(self, obj) -> str:
        found = self._garments(obj) if obj and obj.pk else []
        if not found:
            return "None yet: the garments appear once the active model has analysed the photo."
        make = reverse("admin:catalog_snapshot_garment_item", args=[obj.pk])
        picture = obj.thumbnail or obj.image
        outlines = format_html_join(
            "",
            '<polygon points="{}" fill="none" stroke="#e4007c" stroke-width="4" vector-effect="non-scaling-stroke">'
            "<title>{}</title></polygon>",
            (
                (" ".join(f"{x * 1000:.1f},{y * 1000:.1f}" for x, y in polygon), GROUP_NAMES.get(g.group, g.group))
                for g in found
                for polygon in g.outline
            ),
        )
        # SVG attributes, not style: the admin's Content-Security-Policy allows no inline style.
        drawing = format_html(
            '<svg class="admin-garments" viewBox="0 0 1000 1000" preserveAspectRatio="none" width="240" '
            'height="{}" role="img" aria-label="The photo with its garments outlined">'
            '<image href="{}" x="0" y="0" width="1000" height="1000" preserveAspectRatio="none"/>{}</svg>',
            round(240 * obj.height / obj.width) if obj.width else 320,
            picture.url,
            outlines,
        )
        rows = format_html_join(
            "",
            "<li>{} ({}% sure, {}% of the photo) "
            '<button type="submit" class="button" formaction="{}" formmethod="post" name="garment" value="{}">'
            "Make an item of it</button></li>",
            (
                (GROUP_NAMES.get(g.group, g.group), round(g.confidence * 100), round(g.area * 100, 1), make, g.pk)
                for g in found
            ),
        )
        suggested = snapshot_tags_suggested(snapshot=obj, garments=found)
        tags = ""
        if suggested:
            tags = format_html(
                '<p>Suggested tags: {} <button type="submit" class="button" formaction="{}" formmethod="post" '
                'name="tags" value="{}">Accept suggested tags</button></p>',
                ", ".join(suggested),
                reverse("admin:catalog_snapshot_garment_tags", args=[obj.pk]),
                ",".join(suggested),
            )
        return format_html("{}<ul>{}</ul>{}", drawing, rows, tags)

    def get_urls(self):
        own = [
            path(
                "<path:object_id>/garments/item/",
                self.admin_site.admin_view(self.garment_item_view),
                name="catalog_snapshot_garment_item",
            ),
            path(
                "<path:object_id>/garments/tags/",
                self.admin_site.admin_view(self.garment_tags_view),
                name="catalog_snapshot_garment_tags",
            ),
        ]
        return own + super().get_urls()

    def _garment_action(self, request, object_id):
        """The snapshot of a garment action (POST only, staff who may change it), or the response to send."""
        if request.method != "POST":
            return None, HttpResponseNotAllowed(["POST"])
        try:
            snapshot = get_object_or_404(Snapshot, pk=int(object_id))
        except ValueError:
            return None, HttpResponseRedirect(reverse("admin:catalog_snapshot_changelist"))
        if not self.has_change_permission(request, snapshot):
            raise PermissionDenied
        return snapshot, None

    def garment_item_view(self, request, object_id):
        snapshot, response = self._garment_action(request, object_id)
        if response is not None:
            return response
        back = HttpResponseRedirect(reverse("admin:catalog_snapshot_change", args=[snapshot.pk]))
        value = request.POST.get("garment", "")
        garment = SnapshotGarment.objects.filter(snapshot=snapshot, pk=int(value)).first() if value.isdigit() else None
        if garment is None:
            self.message_user(request, "That garment is not on this snapshot (any more).", messages.ERROR)
            return back
        try:
            item = post_item_from_garment(snapshot=snapshot, garment=garment)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return back
        self.message_user(
            request,
            format_html(
                'Item <a href="{}">{}</a> is linked to this post (category: {}); its embedding is queued.',
                reverse("admin:catalog_item_change", args=[item.pk]),
                item.name,
                item.category or "none",
            ),
            messages.SUCCESS,
        )
        return back

    def garment_tags_view(self, request, object_id):
        snapshot, response = self._garment_action(request, object_id)
        if response is not None:
            return response
        suggested = set(snapshot_tags_suggested(snapshot=snapshot, garments=self._garments(snapshot)))
        names = [name for name in request.POST.get("tags", "").split(",") if name in suggested]
        added = snapshot_tags_accept(snapshot=snapshot, names=names)
        self.message_user(request, f"Added {len(added)} tags: {', '.join(t.name for t in added) or 'none'}.")
        return HttpResponseRedirect(reverse("admin:catalog_snapshot_change", args=[snapshot.pk]))

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_total=Count("post_items", distinct=True))

    @admin.display(description="Items", ordering="item_total")
    def item_count(self, obj) -> int:
        return obj.item_total

    def save_model(self, request, obj, form, change):
        # The whole post (snapshot + inline items) is written by one service call in save_related,
        # where the inline items are known.
        pass

    def save_related(self, request, form, formsets, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in SnapshotAdminForm.Meta.fields}
        fields.pop("title")
        items = []
        for formset in formsets:
            # Not saved through the formset: the change log reads these lists.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for inline in formset.forms:
                if formset._should_delete_form(inline) or not inline.cleaned_data:
                    continue
                entry = inline.post_entry()
                if entry is not None:
                    items.append(entry)
        if change:
            post_update(
                snapshot=form.instance, image=form.clean_image_value, items=items, title=data["title"], **fields
            )
        else:
            snapshot = post_create(image=form.clean_image_value, title=data["title"], items=items, **fields)
            form.instance.pk = snapshot.pk
            form.instance._state.adding = False


@admin.register(Item)
class ItemAdmin(ImageRecordAdminMixin, admin.ModelAdmin):
    form = ItemAdminForm
    list_display = ["thumb", "name", "brand", "category", "price", "embedding_status", "created_at"]
    list_display_links = ["thumb", "name"]
    list_filter = ["embedding_status", CategoryTreeFilter, "brand", "styles"]
    list_select_related = ["brand", "category", "category__parent"]
    search_fields = ["name", "brand__name", "category__name", "source_key", "content_hash"]
    autocomplete_fields = ["brand", "category", "styles"]
    requeue_as = "items"

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ["image", "name", "brand", "category", "styles", "price", "product_url"]})
        return self._fieldsets(obj, main)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in ItemAdminForm.Meta.fields if name != "styles"}
        if change:
            item_update(item=obj, image=form.clean_image_value, styles=data["styles"], **fields)
        else:
            item = item_create(image=form.clean_image_value, styles=data["styles"], **fields)
            obj.pk = item.pk
            obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # Styles were set by the service in save_model.
        pass


class NamedAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


admin.site.register(Style, NamedAdmin)
admin.site.register(Brand, NamedAdmin)
admin.site.register(Tag, NamedAdmin)


@admin.register(Category)
class CategoryAdmin(SafeAutocompleteMixin, NamedAdmin):
    list_display = ["__str__", "slug", "parent"]
    list_select_related = ["parent"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "slug", "parent__name"]
    autocomplete_fields = ["parent"]

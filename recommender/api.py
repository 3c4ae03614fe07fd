"""The JSON API (django-ninja), mounted at /api/: browse, recommendations, upload queries.

OpenAPI schema at /api/openapi.json, interactive docs at /api/docs (Swagger UI from the assets
django-ninja ships, so it works offline). Every error is JSON ``{"message": ..., "detail": ...}``
with a 4xx/5xx status: 404 unknown id, 422 bad parameters (a NUL byte, a value that cannot be a
slug, an unknown filter slug), 400 a file that is not a usable image or a request body that cannot
be read (malformed multipart), 413 an oversized upload or body, 503 no active model / no worker /
timeout.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, HttpRequest, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from ninja import File, Form, NinjaAPI, Query, Schema, Status, Swagger
from ninja.errors import ValidationError as NinjaValidationError
from ninja.files import UploadedFile
from pydantic import Field

from catalog.models import Item, Snapshot
from catalog.validators import size_text
from config.outages import database_unavailable_response, database_unreachable
from recommender import presenters, selectors
from recommender.selectors.similarity import pieces
from recommender.uploads import DIRECTIONS, box_clean, box_parse, upload_recommendations

api = NinjaAPI(
    title="Lookbook API",
    version="1.0",
    description="Street snapshots <-> fashion items: browse the catalog and get visual recommendations.",
    urls_namespace="recommender:api",  # mounted inside recommender.urls (app_name "recommender")
    # No validator badge: it would load an image from the Swagger validator's site.
    docs=Swagger(settings={"validatorUrl": None}),
)


# --- schemas -------------------------------------------------------------------------------


class ErrorOut(Schema):
    message: str
    detail: object | None = None


class ItemOut(Schema):
    id: int
    name: str
    brand: str | None
    category: str | None
    price: Decimal | None
    product_url: str
    url: str
    image: str
    thumbnail: str

    @staticmethod
    def of(item: Item) -> ItemOut:
        return ItemOut(
            id=item.pk,
            name=item.name,
            brand=item.brand.slug if item.brand_id else None,
            category=item.category.slug if item.category_id else None,
            price=item.price,
            product_url=item.product_url,
            url=presenters.page_url(item),
            image=presenters.image_url(item),
            thumbnail=presenters.thumbnail_url(item),
        )


class SnapshotOut(Schema):
    id: int
    title: str
    person_name: str
    url: str
    image: str
    thumbnail: str

    @staticmethod
    def of(snapshot: Snapshot) -> SnapshotOut:
        return SnapshotOut(
            id=snapshot.pk,
            title=snapshot.title,
            person_name=snapshot.person_name,
            url=presenters.page_url(snapshot),
            image=presenters.image_url(snapshot),
            thumbnail=presenters.thumbnail_url(snapshot),
        )


class GarmentOut(Schema):
    number: int = Field(
        description="The garment's number on its look (1 = the top of the photo); search it with ?garment=."
    )
    group: str = Field(description="The parser's garment group (tops, trousers, shoes, ...).")
    name: str
    box: list[float] = Field(description="left, top, right, bottom as fractions of the photo's width and height.")
    outline: list[list[list[float]]] = Field(description="Polygons of [x, y] fractions of the photo.")
    confidence: float

    @staticmethod
    def of(garment: pieces.Garment) -> GarmentOut:
        return GarmentOut(
            number=garment.number,
            group=garment.group,
            name=garment.name,
            box=list(garment.box),
            outline=garment.outline,
            confidence=garment.confidence,
        )


class ItemMatchOut(Schema):
    score: float = Field(description="Cosine similarity of the best-matching snapshot region (1 = identical).")
    item: ItemOut
    garment: int | None = Field(default=None, description="The number of the garment this item was picked for.")


class SnapshotMatchOut(Schema):
    score: float = Field(description="Cosine similarity of the snapshot's best-matching region.")
    snapshot: SnapshotOut
    garment: GarmentOut | None = Field(default=None, description="The garment of the look the item matched.")


class SnapshotDetailOut(SnapshotOut):
    garments: list[GarmentOut] = Field(description="The garments the active model found on the photo.")


class ItemRecommendationsOut(Schema):
    """Items for a look: ``picks``, one item per garment in the look's order; ``results``, the top k for the
    whole photo, or for one piece when ``garment`` is given (then ``picks`` is empty)."""

    model_version: int
    filters: dict[str, list[str]]
    garments: list[GarmentOut] = Field(default_factory=list)
    garment: int | None = Field(default=None, description="The garment searched, when one was asked for.")
    picks: list[ItemMatchOut] = Field(default_factory=list)
    results: list[ItemMatchOut]


class SnapshotRecommendationsOut(Schema):
    model_version: int
    filters: dict[str, list[str]]
    results: list[SnapshotMatchOut]


class ItemQueryOut(ItemRecommendationsOut):
    """An uploaded street photo: the shape of ``GET /snapshots/{id}/items``, plus the box searched, if any."""

    direction: str
    seconds: float
    box: list[float] | None = None
    group: str | None = None


class SnapshotQueryOut(SnapshotRecommendationsOut):
    """An uploaded product photo: the shape of ``GET /items/{id}/snapshots``."""

    direction: str
    seconds: float


class ItemPage(Schema):
    count: int
    page: int
    pages: int
    results: list[ItemOut]


class SnapshotPage(Schema):
    count: int
    page: int
    pages: int
    results: list[SnapshotOut]


class FilterParams(Schema):
    style: list[str] = Field(default_factory=list, description="Style slugs (any of them).")
    category: list[str] = Field(default_factory=list, description="Category slugs; a parent includes its children.")
    brand: list[str] = Field(default_factory=list, description="Brand slugs (any of them).")

    def resolve(self) -> selectors.Filters:
        return selectors.filters_resolve(styles=self.style, categories=self.category, brands=self.brand)


class RecommendParams(FilterParams):
    k: int = Field(default=settings.RECOMMENDER_TOP_K, ge=1, le=settings.RECOMMENDER_MAX_K)


class LookParams(RecommendParams):
    garment: int | None = Field(default=None, ge=1, le=100, description="Search only this garment of the look.")


class PageParams(FilterParams):
    page: int = Field(default=1, ge=1)
    # None: CATALOG_PAGE_SIZE, read per request (a default taken at import would keep a test's override)
    page_size: int | None = Field(default=None, ge=1, le=100, description="Default: the site's page size.")


# --- errors ----------------------------------------------------------------------------------

ERRORS = {404: ErrorOut, 422: ErrorOut, 503: ErrorOut}


def _error(request: HttpRequest, status: int, message: str, detail: object | None = None):
    return api.create_response(request, {"message": message, "detail": detail}, status=status)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, str(exc) or "Not found.")


@api.exception_handler(pieces.GarmentNotFound)
def _garment_not_found(request, exc):
    return _error(request, 404, "This look has no such garment.", str(exc))


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    return _error(request, 422, "Invalid request parameters.", exc.errors)


@api.exception_handler(selectors.UnknownFilter)
def _unknown_filter(request, exc):
    return _error(request, 422, str(exc), {"kind": exc.kind, "slugs": exc.slugs})


@api.exception_handler(selectors.InvalidFilter)
def _invalid_filter(request, exc):
    return _error(request, 422, str(exc), {"kind": exc.kind, "value": exc.value, "max_length": exc.max_length})


# Django raises these when the operation first reads request.POST / request.FILES; without a handler
# django-ninja answers a traceback (DEBUG) or leaves Django to answer its HTML 400.
@api.exception_handler(MultiPartParserError)
@api.exception_handler(UnreadablePostError)
def _unreadable_body(request, exc):
    return _error(request, 400, "The request body could not be read as a form.", str(exc))


@api.exception_handler(TooManyFieldsSent)
@api.exception_handler(TooManyFilesSent)
def _too_many_parts(request, exc):
    return _error(request, 400, "The request has too many form fields or files.", str(exc))


@api.exception_handler(RequestDataTooBig)
def _body_too_big(request, exc):
    return _error(
        request, 413, f"The form fields are larger than {size_text(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)}.", str(exc)
    )


@api.exception_handler(selectors.RecommendationUnavailable)
def _unavailable(request, exc):
    response = _error(request, 503, exc.message)
    response["Retry-After"] = "30"
    return response


# PostgreSQL unreachable: the 503 of config.outages (django-ninja would answer a DEBUG traceback itself).
@api.exception_handler(DatabaseOperationalError)
@api.exception_handler(DatabaseInterfaceError)
def _database_unreachable(request, exc):
    if not database_unreachable(exc):
        raise exc  # a failed statement is a bug: Django answers it as one
    return database_unavailable_response(request)


# --- browse ------------------------------------------------------------------------------------


def _page(qs, params: PageParams):
    paginator = Paginator(qs, params.page_size or settings.CATALOG_PAGE_SIZE)
    if params.page > max(1, paginator.num_pages):
        raise Http404(f"Page {params.page} does not exist; there are {paginator.num_pages}.")
    return paginator, paginator.page(params.page)


@api.get("/snapshots", response={200: SnapshotPage, **ERRORS}, tags=["browse"])
def snapshots(request, params: Query[PageParams]):
    """Published snapshots, newest first, filtered by style/category (of curated items)/brand."""
    paginator, page = _page(selectors.snapshot_list(filters=params.resolve()), params)
    return SnapshotPage(
        count=paginator.count,
        page=page.number,
        pages=paginator.num_pages,
        results=[SnapshotOut.of(s) for s in page.object_list],
    )


@api.get("/items", response={200: ItemPage, **ERRORS}, tags=["browse"])
def items(request, params: Query[PageParams]):
    """Items, newest first, filtered by style/category/brand."""
    paginator, page = _page(selectors.item_list(filters=params.resolve()), params)
    return ItemPage(
        count=paginator.count,
        page=page.number,
        pages=paginator.num_pages,
        results=[ItemOut.of(i) for i in page.object_list],
    )


# --- recommendations ---------------------------------------------------------------------------


def _item_matches(matches, garment: int | None = None) -> list[ItemMatchOut]:
    return [ItemMatchOut(score=m.score, item=ItemOut.of(m.item), garment=garment) for m in matches]


def _snapshot_matches(matches, garments: dict) -> list[SnapshotMatchOut]:
    return [
        SnapshotMatchOut(
            score=m.score,
            snapshot=SnapshotOut.of(m.snapshot),
            garment=GarmentOut.of(garments[m.snapshot.pk]) if m.snapshot.pk in garments else None,
        )
        for m in matches
    ]


def _picks(picks) -> list[ItemMatchOut]:
    return [ItemMatchOut(score=p.match.score, item=ItemOut.of(p.match.item), garment=p.garment.number) for p in picks]


@api.get("/snapshots/{snapshot_id}", response={200: SnapshotDetailOut, **ERRORS}, tags=["browse"])
def snapshot(request, snapshot_id: int):
    """A published snapshot with the garments the active model found on it (none before it is analysed)."""
    found = selectors.snapshot_get(snapshot_id=snapshot_id, details=False)
    version = selectors.model_version_active()
    garments = pieces.garment_list(snapshot_id=snapshot_id, model_version=version) if version else []
    return SnapshotDetailOut(**SnapshotOut.of(found).dict(), garments=[GarmentOut.of(g) for g in garments])


@api.get("/snapshots/{snapshot_id}/items", response={200: ItemRecommendationsOut, **ERRORS}, tags=["recommend"])
def snapshot_items(request, snapshot_id: int, params: Query[LookParams]):
    """Items for a snapshot: one pick per garment of the look (``picks``) and the whole photo's top k
    (``results``); with ``garment``, the k items nearest that one piece (404 when the look has no such garment)."""
    selectors.snapshot_get(snapshot_id=snapshot_id, details=False)
    filters = params.resolve()
    version = selectors.model_version_active()
    if params.garment is not None:
        garment, matches = pieces.item_list_for_garment(
            snapshot_id=snapshot_id, garment_number=params.garment, k=params.k, filters=filters, model_version=version
        )
        return ItemRecommendationsOut(
            model_version=version.pk,
            filters=filters.slugs,
            garments=[GarmentOut.of(garment)],
            garment=garment.number,
            results=_item_matches(matches, garment.number),
        )
    matches = selectors.item_list_for_snapshot(
        snapshot_id=snapshot_id, k=params.k, filters=filters, model_version=version
    )
    garments, picks = pieces.look_picks(snapshot_id=snapshot_id, filters=filters, model_version=version)
    return ItemRecommendationsOut(
        model_version=version.pk,
        filters=filters.slugs,
        garments=[GarmentOut.of(g) for g in garments],
        picks=_picks(picks),
        results=_item_matches(matches),
    )


@api.get("/items/{item_id}/snapshots", response={200: SnapshotRecommendationsOut, **ERRORS}, tags=["recommend"])
def item_snapshots(request, item_id: int, params: Query[RecommendParams]):
    """The k published snapshots wearing something like the item (ranked by best region), each with the
    garment of the look it matched."""
    selectors.item_get(item_id=item_id, details=False)
    filters = params.resolve()
    version = selectors.model_version_active()
    matches = selectors.snapshot_list_for_item(item_id=item_id, k=params.k, filters=filters, model_version=version)
    garments = pieces.matched_garments(item_id=item_id, matches=matches, model_version=version)
    return SnapshotRecommendationsOut(
        model_version=version.pk, filters=filters.slugs, results=_snapshot_matches(matches, garments)
    )


@api.post(
    "/query",
    response={200: ItemQueryOut | SnapshotQueryOut, 400: ErrorOut, 413: ErrorOut, **ERRORS},
    tags=["recommend"],
)
def query(
    request,
    image: File[UploadedFile],
    direction: Form[str],
    k: Form[int] = settings.RECOMMENDER_TOP_K,
    style: Form[list[str]] = None,
    category: Form[list[str]] = None,
    brand: Form[list[str]] = None,
    box: Form[str] = None,
    group: Form[str] = None,
):
    """Recommendations for an uploaded photo (multipart: ``image``, ``direction``); the photo is not stored.

    ``direction``: ``snapshot_to_items`` (a street photo -> items: the answer of ``GET /snapshots/{id}/items``,
    its garments and one pick per garment) or ``item_to_snapshots`` (a product photo -> snapshots, each with
    the garment it matched). ``box`` (``left,top,right,bottom`` fractions of the photo; street photos only)
    searches only that piece, among ``group``'s categories when given (a detected garment's group), else any.
    """
    if direction not in DIRECTIONS:
        return Status(422, ErrorOut(message=f"direction must be one of {', '.join(DIRECTIONS)}.", detail=direction))
    if not 1 <= k <= settings.RECOMMENDER_MAX_K:
        return Status(422, ErrorOut(message=f"k must be between 1 and {settings.RECOMMENDER_MAX_K}.", detail=k))
    if image.size is not None and image.size > settings.CATALOG_MAX_UPLOAD_BYTES:
        limit = size_text(settings.CATALOG_MAX_UPLOAD_BYTES)
        return Status(413, ErrorOut(message=f"The image is {size_text(image.size)}; the limit is {limit}."))
    filters = selectors.filters_resolve(styles=style, categories=category, brands=brand)
    group = group.strip() or None if group is not None else None
    try:
        parsed_box = box_parse(box)
        if parsed_box is not None:
            box_clean(parsed_box)
        if group is not None and group not in pieces.GARMENT_NAMES:
            raise ValueError(f"group must be one of {', '.join(pieces.GARMENT_NAMES)}.")
    except ValueError as exc:
        return Status(422, ErrorOut(message=str(exc), detail={"box": (box or "")[:100], "group": (group or "")[:40]}))
    try:
        result = upload_recommendations(
            file=image, direction=direction, filters=filters, k=k, name=image.name, box=parsed_box, group=group
        )
    except DjangoValidationError as exc:
        status = 413 if getattr(exc, "code", None) == "too_large" else 400
        return Status(status, ErrorOut(message=" ".join(exc.messages)))
    except ValueError as exc:
        return Status(422, ErrorOut(message=str(exc)))
    if direction == "item_to_snapshots":
        return SnapshotQueryOut(
            direction=direction,
            seconds=round(result.seconds, 4),
            model_version=result.model_version_id,
            filters=filters.slugs,
            results=_snapshot_matches(result.snapshots, result.matched),
        )
    return ItemQueryOut(
        direction=direction,
        seconds=round(result.seconds, 4),
        model_version=result.model_version_id,
        filters=filters.slugs,
        garments=[GarmentOut.of(g) for g in result.garments],
        picks=_picks(result.picks),
        results=_item_matches(result.items),
        box=list(result.box) if result.box else None,
        group=result.group,
    )

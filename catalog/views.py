from django.shortcuts import render

from catalog.models import Item, Snapshot


def home(request):
    return render(
        request,
        "catalog/home.html",
        {"snapshot_count": Snapshot.objects.filter(is_published=True).count(), "item_count": Item.objects.count()},
    )

from django.urls import path

from recommender import views
from recommender.api import api

app_name = "recommender"

urlpatterns = [
    path("api/", api.urls),
    path("snapshots/<int:pk>/recommendations/", views.snapshot_items, name="snapshot_items"),
    path("items/<int:pk>/recommendations/", views.item_snapshots, name="item_snapshots"),
    path("search/", views.query, name="query"),
]

from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.snapshot_list, name="home"),
    path("", views.snapshot_list, name="snapshot_list"),
    path("snapshots/<int:pk>/", views.snapshot_detail, name="snapshot_detail"),
    path("items/", views.item_list, name="item_list"),
    path("items/<int:pk>/", views.item_detail, name="item_detail"),
]

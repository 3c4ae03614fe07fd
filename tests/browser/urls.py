"""The project's URLs plus media files, so the live server used by browser tests shows real pictures."""

from django.conf import settings
from django.conf.urls.static import static

from config.urls import urlpatterns as project_urlpatterns

urlpatterns = list(project_urlpatterns)
if not settings.DEBUG:  # config.urls adds media serving only with DEBUG on
    from django.urls import re_path
    from django.views.static import serve

    urlpatterns.append(re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
else:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

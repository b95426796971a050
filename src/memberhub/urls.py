from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import include, path

from memberhub.api import api
from memberhub.core.http import api_not_found

handler500 = "memberhub.core.http.server_error"


def health(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", lambda request: redirect("/api/v1/docs")),
    path("healthz", health),
    path("admin/", admin.site.urls),
    path("console/", include("memberhub.console.urls")),
    path("api/v1/", api.urls),
    path("api/<path:rest>", api_not_found),  # last: only what no API route matched
]

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import include, path

from memberhub.api import api
from memberhub.core.health import healthz, readyz
from memberhub.core.http import api_not_found
from memberhub.core.metrics import metrics_view

handler500 = "memberhub.core.http.server_error"


urlpatterns = [
    path("", lambda request: redirect("/console/")),  # people start at the console
    path("healthz", healthz),
    path("readyz", readyz),
    path("metrics", metrics_view),
    path("admin/", admin.site.urls),
    path("console/", include("memberhub.console.urls")),
    path("api/v1/", api.urls),
    path("api/<path:rest>", api_not_found),  # last: only what no API route matched
]

"""Staff sign in and out of the console with their accounts (the API's login rules)."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from memberhub.access import services as access_services
from memberhub.core.errors import ApplicationError


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or "/console/"
    ok = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return target if ok and target.startswith("/console/") else "/console/"


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        if request.user.is_authenticated:
            return redirect(_next(request))
        return render(request, "console/login.html", {"next": _next(request)})
    username = request.POST.get("username", "")[:150]
    password = request.POST.get("password", "")[:200]
    try:
        access_services.login_check_allowed(username=username, ip=str(request.META.get("REMOTE_ADDR", "")))
    except ApplicationError as exc:
        return render(request, "console/login.html", {"next": _next(request), "error": exc.message,
                                                      "username": username}, status=exc.status)
    user = authenticate(request, username=username, password=password)
    if user is None:
        return render(request, "console/login.html", {"next": _next(request), "username": username,
                                                      "error": _("Wrong username or password.")}, status=401)
    login(request, user)
    return redirect(_next(request))


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("console:login")

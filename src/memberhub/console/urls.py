from django.shortcuts import redirect
from django.urls import path

from memberhub.console.views import auth, members

app_name = "console"

urlpatterns = [
    path("", lambda request: redirect("console:members"), name="home"),
    path("login/", auth.login_page, name="login"),
    path("logout/", auth.logout_page, name="logout"),
    path("members/", members.member_search, name="members"),
    path("members/<int:member_id>/", members.member_detail, name="member"),
]

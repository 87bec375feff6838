from django.contrib.auth import views as auth_views
from django.urls import path
from packs import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("", views.shop, name="shop"),
    path("buy/", views.buy, name="buy"),
    path("success/", views.success, name="success"),
    path("audit/", views.audit, name="audit"),
]

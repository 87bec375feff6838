from django.conf import settings
from django.db import models


class Purchase(models.Model):
    """The site's own audit record of a purchase; billfold keeps the money and the credits."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    price_id = models.CharField(max_length=255)
    package = models.CharField(max_length=64)
    credits = models.PositiveIntegerField()
    session_id = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=32, default="pending")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.user} {self.package} {self.status}"

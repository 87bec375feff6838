"""The admin view of ``billfold dev``: the event inbox, orders needing attention, accounts."""

from billfold.entrypoints.http.admin_ui.views import AdminConfig, AdminView, create_admin_app

__all__ = ["AdminConfig", "AdminView", "create_admin_app"]

"""The demo shop of ``billfold dev``: a small application selling credit packs through billfold."""

from billfold.entrypoints.http.demo.shop import DemoConfig, DemoShop, create_demo_app

__all__ = ["DemoConfig", "DemoShop", "create_demo_app"]

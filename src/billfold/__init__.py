"""billfold: Stripe payments into credits, exactly once.

``import billfold`` loads nothing else; ``billfold.Billfold`` (the in-process facade) is imported
the first time it is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from billfold.library import Billfold

__all__ = ["Billfold"]


def __getattr__(name: str) -> Any:
    if name == "Billfold":
        from billfold.library import Billfold

        return Billfold
    raise AttributeError(f"module 'billfold' has no attribute {name!r}")

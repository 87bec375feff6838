"""Print billfold's OpenAPI document as the client's types are generated from it.

No server is needed: the app is built on a throwaway SQLite file and asked for its document.
The catalog's names (units, packages), which the served document lists as enums, are removed: they
belong to one deployment's catalog, and the client serves every catalog.

    python clients/typescript/scripts/openapi.py > clients/typescript/openapi.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from billfold.entrypoints.http.app import create_app
from billfold.settings import Settings

CATALOG_ENUMS = {
    "SpendRequest": "unit",
    "HoldRequest": "unit",
    "ManualGrantRequest": "unit",
    "CheckoutSessionRequest": "package",
}


def document() -> dict[str, object]:
    for name in [n for n in os.environ if n.startswith("BILLFOLD_")]:
        del os.environ[name]  # the document must not depend on this machine's settings
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "openapi.db"
        app = create_app(Settings(database_url=f"sqlite:///{db}", catalog=None), run_worker=False)
        schema = app.openapi()
    models = schema.get("components", {}).get("schemas", {})
    for model, field in CATALOG_ENUMS.items():
        models.get(model, {}).get("properties", {}).get(field, {}).pop("enum", None)
    return schema


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")

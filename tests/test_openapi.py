"""docs/openapi.yaml describes exactly the routes the app serves."""
from __future__ import annotations

from pathlib import Path

import yaml

from bot.settings import Settings
from server import create_app

DOC = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"


def app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings.from_env({}), run_workers=False)
    out = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:  # the static-file directory (/static/…) is not an API route
            continue
        out.add((path, route.method.lower()))
    return out


def test_openapi_matches_router():
    doc = yaml.safe_load(DOC.read_text())
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops if method != "parameters"}
    assert documented == app_routes()

"""ASGI entry point: `uvicorn ezone_catalog.main:app`."""

from ezone_kit.service import create_app

from .bootstrap import definition

app = create_app(definition)

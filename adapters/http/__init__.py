"""The HTTP edge: JSON API and server-rendered pages on one litestar app (`create_app`)."""

from adapters.http.app import create_app

__all__ = ["create_app"]

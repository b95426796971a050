"""The production HTTP server: gunicorn with threaded workers, static files via WhiteNoise."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _App(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from memberhub.wsgi import application

        return application


def serve(*, host: str, port: int, workers: int, threads: int) -> None:
    _App(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            "timeout": 60,
            "graceful_timeout": 20,
            "forwarded_allow_ips": "127.0.0.1",
        }
    ).run()

"""The API docs page works on a closed network: every script, stylesheet and icon it loads is
served by memberhub itself (from the installed packages, through WhiteNoise), none from a CDN."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

from django.test import Client


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)


def _body(response: Any) -> bytes:
    # WhiteNoise answers with a file response (streamed); a view with content
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_the_docs_page_loads_nothing_from_another_host(db: Any) -> None:
    client = Client()
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    parser = _Refs()
    parser.feed(html)
    scripts = [r for r in parser.refs if r.endswith(".js")]
    assert len(scripts) >= 2 and any(r.endswith(".css") for r in parser.refs), parser.refs  # Swagger UI itself
    for ref in parser.refs:
        # a local path: not absolute (http:, https:) and not scheme-relative (//cdn...)
        assert ref.startswith("/") and not ref.startswith("//"), ref
        answer = client.get(ref)
        assert answer.status_code == 200, ref
        body = _body(answer)
        assert len(body) > 100, ref
        if ref.endswith(".css"):  # what a stylesheet pulls in (fonts, images) is inline or local
            assert not re.search(rb"url\(\s*['\"]?(https?:)?//", body), ref
    assert not re.search(r"https?://|//cdn", html.split('id="swagger-settings"')[0]), html
    # The page's settings: the spec is ours, and Swagger UI's online validator (a request to
    # validator.swagger.io with our spec's address) is off.
    settings_json = html.split('id="swagger-settings">', 1)[1].split("</script>", 1)[0]
    config = json.loads(settings_json)
    assert config["url"] == "/api/v1/openapi.json"
    assert config["validatorUrl"] is None

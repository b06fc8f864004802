"""A DNS-01 provider publishing TXT records through pebble-challtestsrv's management API.

Built as a distribution of its own and installed by the tests, the way an operator
installs a provider next to SecOps. ``token`` is a secret: the platform reads it through
its secret reader and the provider refuses to work without it.
"""

from __future__ import annotations

import json
import urllib.request
from typing import ClassVar

from secops.certs.dns import DnsProvider


class ChallTestSrv(DnsProvider):
    slug = "challtestsrv"
    settings_schema: ClassVar = {"url": str}
    required = ("url",)
    secrets = ("token",)

    def _post(self, path: str, body: dict[str, str]) -> None:
        if not self.secret_values.get("token"):
            raise PermissionError("no token")
        request = urllib.request.Request(
            self.settings["url"].rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {self.secret_values['token']}"})
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - a test URL
            answer.read()

    def add_txt(self, name: str, value: str) -> None:
        self._post("/set-txt", {"host": name + ".", "value": value})

    def remove_txt(self, name: str, value: str) -> None:
        self._post("/clear-txt", {"host": name + "."})

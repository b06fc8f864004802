"""Job kinds of the certificate family (registered by ``secops.kinds``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from secops.kinds import JobKind, Params, register


class CertsScanParams(Params):
    """Check inventoried certificate targets: the ones named by ``target_ids``, those with
    ``tag``, or every enabled target when neither is given."""

    target_ids: list[Annotated[str, Field(max_length=36)]] | None = Field(None, min_length=1,
                                                                          max_length=10_000)
    tag: str | None = Field(None, min_length=1, max_length=64)


register(JobKind("certs.scan", "certs", CertsScanParams, 600,
                 "handshake with inventoried endpoints and read certificate files; record "
                 "certificates, changes and findings"))

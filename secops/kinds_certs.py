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


class CertsRenewParams(Params):
    """Issue and deploy the managed certificates that are due (past two thirds of their
    lifetime, or never deployed): those named by ``deployment_ids``, else all; ``force``
    renews them even when not due."""

    deployment_ids: list[Annotated[str, Field(max_length=36)]] | None = Field(None, min_length=1,
                                                                              max_length=1000)
    force: bool = False


register(JobKind("certs.renew", "certs", CertsRenewParams, 900,
                 "renew and deploy managed certificates that are due, with rollback"))

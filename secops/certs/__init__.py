"""Certificate engine: read certificates from files and TLS endpoints and judge them.

Pure domain code: no database, configuration or web imports. See ``docs/certificates.md``
for the finding ids and the local command built on it.
"""

from secops.certs.check import Checker, FileTarget, Target, parse_pins, parse_target
from secops.certs.model import CertReport, CertsError, Finding, Result, TargetError, Thresholds
from secops.certs.tls import Endpoint, TlsProber, weak_protocols_supported

__all__ = [
    "CertReport", "Checker", "CertsError", "Endpoint", "FileTarget", "Finding", "Result", "Target",
    "TargetError", "Thresholds", "TlsProber", "parse_pins", "parse_target", "weak_protocols_supported",
]

"""Multipart bodies: part headers and the number of parts are capped while parsing."""

from __future__ import annotations

from fastapi.testclient import TestClient

from secops.api.app import create_app
from tests.factories import auth, make_key
from tests.security.conftest import assert_problem

BOUNDARY = "hardening-boundary"


def _body(parts: list[tuple[list[str], bytes]]) -> bytes:
    out = b""
    for headers, content in parts:
        out += f"--{BOUNDARY}\r\n".encode() + "".join(h + "\r\n" for h in headers).encode()
        out += b"\r\n" + content + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _post(client: TestClient, key: str, body: bytes):
    return client.post("/v1/scans", content=body, headers={
        **auth(key), "content-type": f"multipart/form-data; boundary={BOUNDARY}"})


FILE = (['Content-Disposition: form-data; name="file"; filename="a.txt"'], b"hello")


def test_part_headers_and_part_count_are_capped(sqlite_env):
    client = TestClient(create_app(), raise_server_exceptions=False)
    key = make_key("analyst")
    assert _post(client, key, _body([FILE])).status_code == 202  # the control case

    # each line within the parser's own line limit, together over ours
    padded = (FILE[0] + ["X-Pad: " + "a" * 3000, "X-Pad2: " + "b" * 3000], FILE[1])
    body = assert_problem(_post(client, key, _body([padded])), 422)
    assert body["detail"] == "a multipart part's headers exceed 4096 bytes"

    # one field name repeated does not grow the fields kept, but every part counts
    note = (['Content-Disposition: form-data; name="note"'], b"x")
    body = assert_problem(_post(client, key, _body([note] * 5000 + [FILE])), 422)
    assert body["detail"] == "at most 116 parts per request"

"""MDN HTTP Observatory (``@mdn/mdn-http-observatory``) grades a real API process A+, on
API routes and on a console page (its nonce CSP and its session cookie).

The API runs under uvicorn over TLS with a certificate from a local CA (trustme), the
way production runs behind TLS; the plain-HTTP port is closed, as the API never serves
plain HTTP in production. The npm package, pinned to one version, is installed into a
cache under /tmp on first use (its post-install script, which downloads a CA bundle from
the internet, is skipped; the local CA is given through NODE_EXTRA_CA_CERTS instead).
``scripts/bootstrap.sh`` installs Node.js and npm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from secops.embedded import free_port
from tests.processes import Proc, wait_for

VERSION = "1.4.8"  # the grading this test checks is that release's; change both together
CACHE = Path(os.environ.get("SECOPS_OBSERVATORY_CACHE", "/tmp/secops-npm-cache")) / VERSION
PACKAGE = CACHE / "node_modules" / "@mdn" / "mdn-http-observatory"
SCRIPT = """
import { retrieve } from "%(pkg)s/src/retriever/retriever.js";
import { ALL_TESTS } from "%(pkg)s/src/constants.js";
import { getGradeForScore, getScoreModifier } from "%(pkg)s/src/grader/grader.js";
import { MINIMUM_SCORE_FOR_EXTRA_CREDIT } from "%(pkg)s/src/grader/charts.js";
const r = await retrieve("localhost", { httpPort: "%(http)s", httpsPort: "%(https)s",
                                        path: "%(path)s" });
if (!r.responses.auto) { console.log(JSON.stringify({ error: "down" })); process.exit(1); }
let extra = 100, uncurved = 100;
const tests = {};
for (const test of ALL_TESTS) {
  const out = test(r);
  const mod = out.result ? getScoreModifier(out.result) : 0;
  extra += mod; if (mod < 0) uncurved += mod;
  tests[out.constructor.name] = { result: out.result, modifier: mod, pass: out.pass };
}
const score = uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? extra : uncurved;
const grade = getGradeForScore(score);
console.log(JSON.stringify({ grade: grade.grade, score: grade.score,
                             status: r.responses.auto.status, tests }));
"""


def _install() -> None:
    if not PACKAGE.is_dir():
        _npm_install()
    installed = json.loads((PACKAGE / "package.json").read_text())["version"]
    assert installed == VERSION, f"{PACKAGE} holds {installed}, not the pinned {VERSION}"
    # Lists the skipped post-install script would download; localhost is in neither.
    conf = PACKAGE / "conf"
    conf.mkdir(exist_ok=True)
    for name, empty in (("hsts-preload.json", "{}"), ("tld-list.json", "[]")):
        if not (conf / name).exists():
            (conf / name).write_text(empty)


def _npm_install() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (scripts/bootstrap.sh installs it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                           "--prefix", str(CACHE), f"@mdn/mdn-http-observatory@{VERSION}"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/healthz", "/v1/jobs", "/console/login"])
def test_observatory_grades_the_api_a_plus(sqlite_env, tmp_path, path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (scripts/bootstrap.sh installs it)")
    _install()
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    port = free_port()
    proc = Proc([sys.executable, "-m", "uvicorn", "--factory", "secops.api.app:create_app",
                 "--host", "127.0.0.1", "--port", str(port), "--no-server-header",
                 "--ssl-keyfile", str(key_file), "--ssl-certfile", str(cert_file)],
                sqlite_env, tmp_path / "api.log")
    try:
        def up() -> bool:
            try:
                return httpx.get(f"https://localhost:{port}/healthz", verify=str(ca_file),
                                 timeout=1).status_code == 200
            except httpx.HTTPError:
                return proc.p.poll() is not None

        wait_for(up, 30, "TLS API ready")
        script = tmp_path / "grade.mjs"
        script.write_text(SCRIPT % {"pkg": PACKAGE.as_posix(), "http": free_port(),
                                    "https": port, "path": path})
        run = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)})
        assert run.returncode == 0, run.stdout + run.stderr[-2000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"observatory {path}: grade {result['grade']} score {result['score']}")
        failing = {k: v for k, v in result["tests"].items() if v["modifier"] < 0}
        assert result["grade"] == "A+", (result["score"], failing)
        assert failing == {}
    finally:
        proc.stop()

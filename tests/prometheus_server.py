"""A real Prometheus server for tests: start it on 127.0.0.1, query its HTTP API, stop it.

The binary comes from the `prometheus` package, which Debian installs as
/usr/bin/prometheus. `find_binary` returns None where it is missing, so tests
can skip.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def find_binary(name: str = "prometheus") -> str | None:
    """Return the path of the `name` executable on the PATH, or None."""
    return shutil.which(name)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Send a GET request to `url` and return the status and body, also for 4xx and 5xx responses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class PrometheusServer:
    """A Prometheus process with its configuration and storage under `workdir`.

    Use it as a context manager. Entering starts the server and waits until
    /-/ready returns 200, and leaving stops it.
    """

    def __init__(self, binary: str, config: str, workdir: Path, start_timeout: float = 30.0) -> None:
        self.binary = binary
        self.config = config
        self.workdir = Path(workdir)
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._log_path = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(self.config)
        self.port = free_port()
        command = [
            self.binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with open(self._log_path, "wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"prometheus exited with code {self._process.returncode} during start-up; "
                    f"its log:\n{self.log_tail()}"
                )
            try:
                status, _ = http_get(f"{self.url}/-/ready", timeout=1.0)
                if status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prometheus did not respond on {self.url}/-/ready within {self.start_timeout} s; "
                    f"its log:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def api(self, path: str, **params: str) -> dict[str, Any]:
        """Call the HTTP API at `path` with query `params` and return the decoded JSON response.

        Prometheus rejects an invalid query with HTTP 400 and a JSON body whose
        status is "error". That body is returned, not raised.
        """
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        status, body = http_get(url)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RuntimeError(f"GET {url} returned HTTP {status} with a body that is not JSON: {body[:200]!r}") from exc

    def query(self, expr: str) -> dict[str, Any]:
        """Run the instant query `expr` at the current time."""
        return self.api("/api/v1/query", query=expr)

    def label_values(self, label: str, match: str) -> dict[str, Any]:
        """Return the values of `label` over the series that `match` selects."""
        return self.api(f"/api/v1/label/{urllib.parse.quote(label)}/values", **{"match[]": match})

    def wait_for_targets_up(self, timeout: float = 20.0) -> None:
        """Wait until every scrape target reports health "up"."""
        deadline = time.monotonic() + timeout
        last: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            response = self.api("/api/v1/targets", state="active")
            last = response.get("data", {}).get("activeTargets", [])
            if last and all(target["health"] == "up" for target in last):
                return
            time.sleep(0.5)
        summary = [(target.get("scrapeUrl"), target.get("health"), target.get("lastError")) for target in last]
        raise TimeoutError(f"scrape targets not up within {timeout} s: {summary}")

    def __enter__(self) -> PrometheusServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

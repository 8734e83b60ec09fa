"""nginx (Debian ``nginx-light``) as the provisioning server: static files over https and http.

One nginx serves ``workdir/www`` on two loopback ports chosen by the test:

- https on ``https_port`` with the lab's server certificate (names sip.example.test,
  example.test and 127.0.0.1, signed by the lab CA);
- plain http on ``http_port`` (for the pinned-digest rules);
- ``/private/`` on both needs HTTP basic authentication (``user``/``password`` below, stored as
  ``{SSHA}`` in an htpasswd file).

nginx runs in the foreground without a master process (``master_process off``) so it needs no
user switch and never leaves a worker behind; every path (pid, logs, temp dirs) is inside
``workdir``. It is stopped by pid (:class:`~tests.peers.process.PeerProcess`).
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.certs import LabCerts
from tests.peers.process import (
    LOOPBACK,
    PeerHarness,
    PeerProcess,
    free_port,
    read_log,
    require_binary,
    wait_tcp,
)

USER = "prov-user"
PASSWORD = "prov-Passw0rd"

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {w}/access.log;
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    types {{ application/xml xml; application/json json; application/x-pem-file pem; }}
    default_type application/octet-stream;
    server_tokens off;
    server {{
        listen {host}:{https_port} ssl;
        server_name sip.example.test;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {w}/www;
        location /private/ {{ auth_basic "provisioning"; auth_basic_user_file {w}/htpasswd; }}
    }}
    server {{
        listen {host}:{http_port};
        root {w}/www;
        location /private/ {{ auth_basic "provisioning"; auth_basic_user_file {w}/htpasswd; }}
    }}
}}
"""


def _ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass
class Nginx(PeerHarness):
    """A running nginx; put files under :attr:`www` and fetch them from :meth:`url`."""

    workdir: Path
    certs: LabCerts
    https_port: int = 0
    http_port: int = 0
    _proc: PeerProcess | None = field(default=None, repr=False)

    @property
    def www(self) -> Path:
        return self.workdir / "www"

    def url(self, path: str, *, https: bool = True) -> str:
        scheme, port = ("https", self.https_port) if https else ("http", self.http_port)
        return f"{scheme}://{LOOPBACK}:{port}/{path.lstrip('/')}"

    def put(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns its https URL."""
        target = self.www / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return self.url(path)

    def start(self) -> Nginx:
        binary = require_binary("nginx", "nginx-light")
        self.https_port = self.https_port or free_port()
        self.http_port = self.http_port or free_port()
        while self.http_port == self.https_port:
            self.http_port = free_port()
        w = self.workdir
        for d in ("www/private", "tmp", "logs"):
            (w / d).mkdir(parents=True, exist_ok=True)
        (w / "htpasswd").write_text(f"{USER}:{_ssha(PASSWORD)}\n")
        conf = w / "nginx.conf"
        conf.write_text(
            _CONF.format(
                w=w,
                host=LOOPBACK,
                https_port=self.https_port,
                http_port=self.http_port,
                cert=self.certs.server.cert,
                key=self.certs.server.key,
            )
        )
        self._proc = PeerProcess(
            [binary, "-p", str(w), "-e", str(w / "error.log"), "-c", str(conf)],
            log=w / "nginx.out",
        ).start()
        try:
            wait_tcp(self.https_port, timeout=10)
            wait_tcp(self.http_port, timeout=10)
        except TimeoutError:
            self._proc.check_alive()
            self.stop()
            raise
        return self

    def log_text(self) -> str:
        return read_log(self.workdir / "error.log")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


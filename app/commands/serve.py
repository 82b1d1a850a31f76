"""The ``serve`` subcommand (what ``make run`` calls).

``instructor-search serve [--port 8501] [--address 127.0.0.1] [--no-sample] [--dev]``

1. If the default collection has no documents (and ``app.sample_corpus`` is on), ingest the
   sample corpus that ships with the project (``ingest/sample_corpus/*.pdf``;
   :func:`app.service.ensure_sample_corpus`).
2. Close the Qdrant client (the embedded store is single-process: the app must be the only
   process holding it), print the URL, and replace this process with
   ``streamlit run streamlit_app.py``, passing the effective settings on in the environment.

Streamlit's file watcher is off (it would walk every file of the project folder, ``.venv``
included, and slow uploads down); ``--dev`` turns it on for editing the app. On an address that
is not a loopback address a warning says who can reach the app. The optional ``app.password``
travels to the app in the environment (never on the command line, never printed).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.errors import AppError
from config import ENV_PREFIX

if TYPE_CHECKING:
    from config import Settings

#: The Streamlit script, next to the ``app`` package in the project folder.
APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app.py"


def register(subparsers: Any) -> None:
    """Add the ``serve`` parser."""
    parser = subparsers.add_parser(
        "serve",
        help="start the web app (indexes the sample corpus on first run)",
        description="Start the Streamlit app. If the default collection is empty, the bundled "
        "sample corpus (public-domain PDFs) is indexed first.",
    )
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument(
        "--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)"
    )
    parser.add_argument("--no-sample", action="store_true", help="do not index the sample corpus")
    parser.add_argument(
        "--dev", action="store_true", help="watch the source files and offer to rerun on a change (slow)"
    )
    parser.set_defaults(handler=run_serve)


def child_environment(settings: Settings, base: Mapping[str, str]) -> dict[str, str]:
    """The environment for the Streamlit process: ``base`` with the settings as ``INSTRUCTOR_SEARCH_*``.

    Every ``INSTRUCTOR_SEARCH_*`` variable of ``base`` is replaced by the effective settings (one
    JSON value per section), so flags such as ``--data-dir`` or ``--backend`` reach the app and
    nothing stale can contradict them.

    Args:
        settings: the effective settings.
        base: the current environment.

    Returns:
        The new environment.
    """
    env = {key: value for key, value in base.items() if not key.startswith(ENV_PREFIX)}
    data = settings.model_dump(mode="json")
    data["data_dir"] = str(Path(settings.data_dir).resolve())
    if settings.qdrant_mode == "embedded" and settings.qdrant.path:
        data["qdrant"]["path"] = str(Path(settings.qdrant.path).resolve())
    if settings.app.password is not None:  # the JSON dump masks secrets; the app needs the value
        data["app"]["password"] = settings.app.password.get_secret_value()
    for key, value in data.items():
        env[f"{ENV_PREFIX}{key.upper()}"] = value if isinstance(value, str) else _json(value)
    return env


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def streamlit_command(settings: Settings, *, port: int, address: str, dev: bool = False) -> list[str]:
    """The ``streamlit run`` command line for the app.

    Args:
        settings: the settings (the upload limit).
        port: the port.
        address: the address to listen on.
        dev: keep Streamlit's file watcher on (off otherwise: it walks the whole project folder).

    Returns:
        The command line. It holds no secret (the settings travel in the environment).
    """
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_SCRIPT),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.maxUploadSize",
        str(settings.app.max_upload_mb),
        "--server.fileWatcherType",
        "auto" if dev else "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.showErrorDetails",
        "none",
    ]


def is_loopback(address: str) -> bool:
    """Whether ``address`` only accepts connections from this machine (``127.0.0.0/8``, ``::1``)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def address_warning(address: str, *, password: bool) -> str | None:
    """The warning for serving on ``address`` (``None`` on a loopback address).

    Args:
        address: the ``--address``.
        password: whether ``app.password`` is set.

    Returns:
        What to print, or ``None``.
    """
    if is_loopback(address):
        return None
    if not password:
        return (
            f"--address {address} is not a loopback address and no app.password is set: anyone on the "
            "network can read, upload and delete documents and create collections. Set a password "
            "(INSTRUCTOR_SEARCH_APP__PASSWORD) or serve on 127.0.0.1 (the default)."
        )
    return (
        f"--address {address} is reachable from the network; the app asks for the app.password, but "
        "over plain HTTP. Put it behind an HTTPS proxy, or serve on 127.0.0.1 (the default)."
    )


def check_port(address: str, port: int) -> None:
    """Fail early, with a clear message, when the port is taken.

    Raises:
        AppError: the port is in use or the address is not usable.
    """
    if not 1 <= port <= 65535:
        raise AppError(f"port {port} is not valid; use 1-65535 (--port)")
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            raise AppError(
                f"cannot listen on {address}:{port} ({exc.strerror}); another app may be running there. "
                "Stop it or pass another --port."
            ) from exc


def app_url(address: str, port: int) -> str:
    """The URL to open in a browser."""
    host = "localhost" if address in ("127.0.0.1", "0.0.0.0", "::", "localhost") else address
    return f"http://{host}:{port}"


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Index the sample corpus if needed, then become the Streamlit server."""
    if not APP_SCRIPT.is_file():
        raise AppError(
            f"the app script {str(APP_SCRIPT)!r} is missing; run `make run` from the project folder "
            "(an editable install keeps streamlit_app.py next to the app package)"
        )
    warning = address_warning(args.address, password=settings.app.password is not None)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    check_port(args.address, args.port)
    if not args.no_sample:
        from app.service import ensure_sample_corpus  # qdrant-client and the model stack: not for --help

        ensure_sample_corpus(settings, echo=print)
    command = streamlit_command(settings, port=args.port, address=args.address, dev=args.dev)
    print(f"\ninstructor-search is starting at {app_url(args.address, args.port)}  (Ctrl+C stops it)\n")
    sys.stdout.flush()
    os.chdir(APP_SCRIPT.parent)
    os.execve(sys.executable, command, child_environment(settings, os.environ))
    return 0  # pragma: no cover - execve does not return

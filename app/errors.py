"""Errors of the app package (one base class), and how any error becomes one line for a user.

:func:`user_message` is what the command line and the Streamlit page show for an error: the
project's own errors as they are (they name the bad value and the fix), qdrant-client's transport
errors as a :class:`~store.errors.StoreConnectionError` naming the server and the fix, and
anything else as its type and message with a pointer to the details. Credentials inside URLs are
replaced by ``***`` and control characters are escaped, so a message can be printed as it is.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

from config.names import display, redact_text


class AppError(Exception):
    """Base class of every error raised by :mod:`app`."""


class DocumentViewError(AppError):
    """A hit's page or file cannot be shown (see :mod:`app.documents`)."""


class FileNotKeptError(DocumentViewError):
    """No copy of the file is kept (an upload from before files were kept, or one whose copy is gone)."""


class FileMovedError(DocumentViewError):
    """The file a document was ingested from is no longer where it was."""


class FileChangedError(DocumentViewError):
    """The file a document was ingested from now has other content."""


class PasswordRequiredError(DocumentViewError):
    """The file is an encrypted PDF and no password, or a wrong one, was given.

    Args:
        file_name: the file's display name.
        wrong: a password was given and does not open it.

    Attributes:
        file_name: the file's display name.
        wrong: whether the password given was wrong (``False``: none was given).
    """

    def __init__(self, file_name: str, *, wrong: bool) -> None:
        self.file_name = file_name
        self.wrong = wrong
        if wrong:
            message = f"the password does not open {file_name}; check it and try again"
        else:
            message = f"{file_name} is an encrypted PDF: give its password to show its pages"
        super().__init__(message)


def one_line(text: str) -> str:
    """``text`` safe to print on one line: credentials redacted, line breaks and controls escaped."""
    return display(redact_text(" ".join(part.strip() for part in str(text).splitlines() if part.strip())))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (``__cause__``, else ``__context__``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _transport_error(exc: BaseException) -> str | None:
    """Why a call to the Qdrant server failed, when ``exc`` is a transport error; else ``None``."""
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    if isinstance(exc, UnexpectedResponse):
        answer = f"it answered HTTP {exc.status_code} {exc.reason_phrase}".rstrip()
        try:
            detail = exc.structured().get("status", {}).get("error")
        except (ValueError, AttributeError):
            detail = None
        return f"{answer} ({detail})" if isinstance(detail, str) and detail else answer
    module = type(exc).__module__.split(".")[0]
    if isinstance(exc, ResponseHandlingException):
        source = exc.source if isinstance(exc.source, BaseException) else exc
        return str(source) or type(source).__name__
    if module in ("httpx", "httpcore", "grpc") or isinstance(exc, ConnectionError):
        return str(exc) or type(exc).__name__
    return None


def connection_error(exc: BaseException, url: str | None) -> Exception | None:
    """A :class:`~store.errors.StoreConnectionError` for a Qdrant server that cannot be used.

    qdrant-client raises ``ResponseHandlingException`` (connection refused, DNS, timeouts),
    ``UnexpectedResponse`` (an HTTP error status), httpx / httpcore transport errors and gRPC
    errors, directly or wrapped by the store; all of them mean the same to a user.

    Args:
        exc: the error.
        url: the server URL of the settings (``None`` for an embedded store).

    Returns:
        The one-line error naming the (redacted) URL and the fix, or ``None`` when ``exc`` is
        not a server problem.
    """
    from store.errors import StoreConnectionError

    for cause in _chain(exc):
        reason = _transport_error(cause)
        if reason is None:
            continue
        where = f"the Qdrant server at {redact_text(url)}" if url else "the Qdrant server"
        if reason.startswith("it answered"):
            fix = (
                "check the URL and the API key (--qdrant-url, --qdrant-api-key, INSTRUCTOR_SEARCH_QDRANT__*)"
            )
            return StoreConnectionError(f"{where} cannot be used: {reason}; {fix}")
        return StoreConnectionError(
            f"cannot reach {where} ({reason}); start the server or fix --qdrant-url "
            "(INSTRUCTOR_SEARCH_QDRANT__URL), or drop it to use the embedded store"
        )
    return None


def user_errors() -> tuple[type[Exception], ...]:
    """The errors whose message is shown as it is (they name the bad value and the fix).

    Every package's one exception base. Imported here, not at the top: importing ``embedder`` or
    ``ingest`` loads the model stack, which a command that fails early should not pay for.
    """
    from config import ConfigError
    from embedder import EmbedderError
    from evaluation.errors import EvaluationError
    from ingest.errors import IngestError
    from representations.errors import RepresentationError
    from retrieval.errors import RetrievalError
    from store.errors import StoreError
    from training.errors import TrainingError

    return (
        AppError,
        TrainingError,
        EvaluationError,
        IngestError,
        RetrievalError,
        StoreError,
        RepresentationError,
        EmbedderError,
        ConfigError,
    )


def user_message(exc: BaseException, *, url: str | None = None, details: str = "run again with -v") -> str:
    """The one line a user sees for ``exc``.

    Args:
        exc: the error.
        url: the Qdrant server URL in use, if any (named, redacted, by connection errors).
        details: where the traceback of an unexpected error can be found.

    Returns:
        The message without line breaks, with credentials redacted and control characters escaped.
    """
    problem = connection_error(exc, url)
    if problem is not None:
        return one_line(str(problem))
    if isinstance(exc, user_errors()):
        return one_line(str(exc))
    return one_line(f"unexpected {type(exc).__name__}: {exc} ({details} for the details)")


#: Where the app says the details of an unexpected error are.
DETAILS_IN_LOG = "details are in the server log"


def log_unexpected(exc: BaseException, logger: logging.Logger) -> None:
    """Log the traceback of an unexpected error (credentials redacted) for the server log.

    The project's own errors and connection errors are left out: their one line says it all.

    Args:
        exc: the error.
        logger: where to log it.
    """
    if isinstance(exc, user_errors()) or connection_error(exc, None) is not None:
        return
    logger.error("unexpected error in the app:\n%s", redact_text("".join(traceback.format_exception(exc))))

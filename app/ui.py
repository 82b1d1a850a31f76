"""The Streamlit page: pick or create a collection, upload documents, search, read cited passages.

``streamlit_app.py`` builds the settings and calls :func:`open_service` and :func:`render`. The
model, the Qdrant client and the write lock come from ``st.cache_resource`` factories keyed by
the settings, so every browser session of the process shares one of each (the embedded store is
single-process). Uploads and deletes take the process-wide write lock; searches do not, and the
client itself serialises its short calls (see :mod:`app.service`).

Uploads run in a background thread of the session (:class:`app.uploads.UploadJob`), so a click anywhere on
the page (which makes Streamlit rerun the script) never interrupts them; the page follows the
job's progress and offers a Cancel button, which stops the job: files not yet stored are rolled
back and reported ``cancelled``, stored ones are kept.

Each collection offers "Adapt to this collection" (:func:`adapt_section`): the collection's model is
fine-tuned on training data made from its own chunks and the collection re-embedded into a new
one, in a background thread (:class:`app.adapting.AdaptJob`) whose progress a fragment of the
sidebar follows, so the page and its searches never wait for it.

Each hit card says when its text came from OCR, and a "Show page" toggle per hit shows its page
as an image with the passage highlighted, and offers the original file for download
(:func:`page_view`). Pages are rendered only for the hits whose toggle is on, and kept for the
session (a few at a time), so a rerun does not render them again. An encrypted PDF asks for its
password there; the password is used for that rendering and is gone from the session as soon as
the page shows.

Security: with ``app.password`` set, the page shows only a password field until the right
password is given in that browser session (:func:`password_gate`). Uploaded names are sanitised
and only used as display names (``upload:<name>`` sources; the kept copy of an upload is named
by its sha256, never by its name); passages, file names and messages are escaped before they
reach HTML or Markdown, so no markup from a document reaches the page. The password field of
the upload form (for encrypted PDFs) is cleared when the form is submitted and reaches only the
ingest; it is never logged, shown or stored. Every error is one line
(:func:`app.errors.user_message`), worded for the page (:func:`app.wording.for_the_page`).
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import html
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.adapting import AdaptJob, adapt_job, dismiss_adapt, start_adapt
from app.documents import media_type
from app.errors import DETAILS_IN_LOG, PasswordRequiredError, log_unexpected, user_errors, user_message
from app.models import adapted_model
from app.service import SearchService, guard_client, serialize_embedder
from app.uploads import UploadJob, UploadOutcome, start_upload
from app.wording import for_the_page, plural
from config import redact_text, validate_collection_name
from embedder import DOMAIN_PRESETS, FakeEmbedder
from ingest.reembed import derived_from
from retrieval.engine import MAX_QUERY_CHARS, Hit, SearchResult
from retrieval.modes import available_modes, is_cosine

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from config import Settings
    from embedder import Embedder
    from ingest.pageview import PageImage
    from ingest.report import ProgressEvent
    from ingest.sources import FileResult
    from store.manifest import DocumentManifest
    from store.record import CollectionRecord

logger = logging.getLogger(__name__)

#: Errors whose message is shown as is (they name the bad value and the fix).
USER_ERRORS: tuple[type[Exception], ...] = user_errors()
NEW_COLLECTION = "+ New collection…"
UPLOAD_TYPES = ["pdf", "txt", "md"]
_STATUS_ICON = {
    "ingested": ":material/check_circle:",
    "replaced": ":material/sync:",
    "unchanged": ":material/task_alt:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "skipped": ":material/visibility_off:",
}
#: Seconds between two looks at a running upload.
_POLL_SECONDS = 0.25
_STOPWORD_TEXT = (
    "a about an and are as at be been but by can could did do does for from had has have how i if in "
    "into is it its me my no not of on or our should so than that the their them then there these "
    "they this to was we were what when where which who whom why will with would you your"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: Rendered pages kept per browser session (the latest ones).
_PAGE_IMAGES_KEPT = 6
#: Widest a page image is drawn, in CSS pixels (a whole page stays in view).
_PAGE_WIDTH = 760
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~=:$&])")


# -- cached resources (one per process and settings) ------------------------------------------------


@st.cache_resource(show_spinner="Loading the embedding model…")
def _cached_embedder(key: str, _settings: Settings) -> Embedder:
    from embedder import make_embedder

    return serialize_embedder(make_embedder(_settings))


@st.cache_resource(show_spinner=False)
def _cached_client(key: str, _settings: Settings) -> QdrantClient:
    from store.client import open_client

    return guard_client(open_client(_settings), _settings)


@st.cache_resource(show_spinner=False)
def _cached_write_lock(key: str) -> threading.Lock:
    return threading.Lock()


def _store_key(settings: Settings) -> str:
    return f"{settings.qdrant_mode}:{settings.qdrant_location}"


def cached_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for the settings' model section."""
    return _cached_embedder(
        settings.model.model_dump_json() + str(settings.data_dir) + settings.cache.model_dump_json(), settings
    )


def cached_client(settings: Settings) -> QdrantClient:
    """The process-wide Qdrant client for the settings' store (thread-safe)."""
    return _cached_client(_store_key(settings), settings)


def cached_write_lock(settings: Settings) -> threading.Lock:
    """The process-wide write lock of the settings' store."""
    return _cached_write_lock(_store_key(settings))


def open_service(settings: Settings) -> SearchService | None:
    """The service built from the cached resources, or ``None`` after showing why it failed.

    The model is not loaded here: the first page needs only its name (:attr:`SearchService.model_id`),
    so it shows without waiting for the model, which loads (once per process, with a spinner) on
    the first search or upload.
    """
    try:
        client = cached_client(settings)
    except Exception as exc:  # noqa: BLE001 - every failure is one line on the page
        log_unexpected(exc, logger)
        show_error(exc, url=settings.qdrant.url)
        return None
    return SearchService(
        settings=settings,
        client=client,
        write_lock=cached_write_lock(settings),
        loader=cached_embedder,
    )


# -- text safety -----------------------------------------------------------------------------------


def md_escape(text: str) -> str:
    """Escape text for Streamlit Markdown so it shows literally (no links, emphasis or HTML)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def md_code(text: str) -> str:
    """Text as a Markdown code span (backticks inside are replaced; nothing else is interpreted)."""
    return "`" + text.replace("`", "'").replace("\n", " ") + "`"


def show_error(exc: BaseException | str, *, url: str | None = None) -> None:
    """Show an error as one line (never a traceback; credentials in URLs redacted).

    Args:
        exc: the error, or a message.
        url: the Qdrant server URL in use (named by connection errors).
    """
    message = user_message(exc, url=url, details=DETAILS_IN_LOG) if isinstance(exc, BaseException) else exc
    st.error(md_escape(redact_text(for_the_page(message))), icon=":material/error:")


def query_terms(query: str) -> list[str]:
    """The words of a query worth highlighting (no stop words, at least two letters)."""
    words = re.findall(r"\w+", query.lower())
    return sorted({w for w in words if len(w) >= 2 and w not in _STOPWORDS}, key=len, reverse=True)


def highlight(text: str, terms: Sequence[str]) -> str:
    """HTML of ``text`` with every word that starts with a query term in ``<mark>``.

    The text is escaped piece by piece, so nothing in it is interpreted as HTML.
    """
    if not terms:
        return html.escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(html.escape(text[last : match.start()]))
        parts.append(f"<mark>{html.escape(match.group(0))}</mark>")
        last = match.end()
    parts.append(html.escape(text[last:]))
    return "".join(parts)


def hit_card_html(rank: int, hit: Hit, terms: Sequence[str]) -> str:
    """One result card: file name, page, an OCR badge when OCR'd, and score, then the highlighted passage (all escaped)."""
    page = f"page {hit.page}" if hit.page is not None else "text file"
    passage = highlight(" ".join(hit.text.split()), terms)
    ocr = (
        '<span class="hit-ocr" title="the text of this page was read by OCR" style="background:#fef3c7;'
        'color:#92400e;border-radius:0.3rem;padding:0 0.4rem">OCR</span>'
        if hit.ocr
        else ""
    )
    return (
        '<div class="hit-card" style="border:1px solid rgba(49,51,63,0.2);border-radius:0.5rem;'
        'padding:0.75rem 1rem;margin-bottom:0.25rem">'
        '<div style="display:flex;gap:0.75rem;align-items:baseline;flex-wrap:wrap;margin-bottom:0.4rem">'
        f'<span style="font-weight:700;color:#6b7280">#{rank}</span>'
        f'<span class="hit-file" style="font-weight:700">{html.escape(hit.file_name)}</span>'
        f'<span class="hit-page" style="background:#eef2ff;color:#3730a3;border-radius:0.3rem;'
        f'padding:0 0.4rem">{html.escape(page)}</span>'
        f"{ocr}"
        f'<span class="hit-score" style="color:#6b7280">score {hit.score:.3f}</span>'
        "</div>"
        f'<div class="hit-text" style="line-height:1.55">{passage}</div>'
        "</div>"
    )


# -- the page ----------------------------------------------------------------------------------------


@dataclass
class PageState:
    """What the sidebar decided for this run."""

    collection: str
    record: CollectionRecord | None
    top_k: int
    threshold: float | None
    mode: str | None = None


def password_gate(settings: Settings) -> bool:
    """With ``app.password`` set, ask for it once per browser session.

    The password field is all the page shows until the right password is given; the typed
    value is compared in constant time and never logged, shown or kept.

    Args:
        settings: the settings (``app.password``).

    Returns:
        Whether the page may be drawn (no password set, or this session gave it).
    """
    secret = settings.app.password
    if secret is None or st.session_state.get("_authenticated"):
        return True
    st.title(":material/lock: instructor-search")
    with st.form("password_gate", clear_on_submit=True):
        given = st.text_input("Password", type="password", key="password_input")
        submitted = st.form_submit_button("Enter", type="primary")
    if submitted:
        if hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
            st.session_state["_authenticated"] = True
            st.rerun()
        time.sleep(0.5)  # slows down guessing
        st.error(
            "Wrong password. Ask whoever runs the app for the password (setting app.password).",
            icon=":material/lock:",
        )
    return False


def render(service: SearchService) -> None:
    """Draw the whole page; every error becomes a one-line message, never a traceback."""
    try:
        _render(service)
    except Exception as exc:  # noqa: BLE001 - a page action ends in one line, whatever failed
        log_unexpected(exc, logger)
        show_error(exc, url=service.settings.qdrant.url)


def _render(service: SearchService) -> None:
    st.title(":material/manage_search: instructor-search")
    st.caption(
        "Semantic search over your PDFs with instruction-conditioned embeddings · model "
        + md_code(service.model_id)
    )
    state = _sidebar(service)
    if state is None:
        st.info(
            "Name the new collection and choose its instructions in the sidebar, then press **Create "
            "collection**. Documents are embedded under the document instruction and queries under the "
            "query instruction; both are recorded with the collection and used for every later upload "
            "and search.",
            icon=":material/add_circle:",
        )
        return
    documents = service.documents(state.collection)
    _flash()
    search_tab, documents_tab = st.tabs([":material/search: Search", ":material/description: Documents"])
    with search_tab:
        _search_section(service, state, documents)
    with documents_tab:
        _documents_section(service, state, documents)


def _sidebar(service: SearchService) -> PageState | None:
    settings = service.settings
    pending = st.session_state.pop("_select_collection", None)
    if pending is not None:
        st.session_state["collection"] = pending
    with st.sidebar:
        st.header("Collection")
        names = sorted(set(service.collections()) | {service.default_collection})
        if st.session_state.get("collection") not in [*names, NEW_COLLECTION]:
            st.session_state["collection"] = service.default_collection
        choice = st.selectbox("Collection", [*names, NEW_COLLECTION], key="collection") or (
            service.default_collection
        )
        if choice == NEW_COLLECTION:
            _new_collection_form(service)
            return None
        record = service.record(choice)
        _show_record(service, choice, record)
        if record is not None:
            adapt_section(service, choice, record)
        st.header("Search settings")
        top_k = st.slider("Results (top-k)", 1, 50, settings.app.top_k, key="top_k")
        mode = _mode_choice(settings.search.mode, record)
        cosine = mode is None or is_cosine(mode)
        threshold = st.slider(
            "Minimum score",
            0.0,
            1.0,
            0.0,
            0.05,
            key="threshold",
            disabled=not cosine,
            help="0 shows every hit; cosine similarity (not used by sparse and fused modes)",
        )
    return PageState(
        collection=choice,
        record=record,
        top_k=top_k,
        threshold=(threshold or None) if cosine else None,
        mode=mode,
    )


def _mode_choice(default: str, record: CollectionRecord | None) -> str | None:
    """The retrieval-mode picker: the modes the collection was built for (``None``: no collection yet)."""
    if record is None:
        return None
    modes = available_modes(record)
    if st.session_state.get("mode") not in modes:
        st.session_state["mode"] = default if default in modes else "dense"
    return st.selectbox(
        "Retrieval mode",
        modes,
        key="mode",
        help="dense: the embedding; sparse: BM25 keywords; hybrid: both, fused; sentences / keywords / "
        "questions: the extra representations this collection was built with",
    )


def _show_record(service: SearchService, name: str, record: CollectionRecord | None) -> None:
    if record is None:
        preview = service.default_record()
        st.caption(f"{md_code(name)} is created by the first upload, with these instructions:")
        instructions = preview.instructions
        domain = preview.domain
    else:
        instructions = record.instructions
        domain = record.domain
        if record.model != service.model_id and adapted_model(record, service.settings) is None:
            st.warning(
                f"Built with {md_code(record.model)}, but the app runs "
                f"{md_code(service.model_id)}: searches and uploads here are refused.",
                icon=":material/warning:",
            )
    st.markdown(f"**Domain:** {md_escape(domain) if domain else '(general)'}")
    st.markdown("**Query instruction**")
    st.code(instructions.get("query") or "(none)", language=None, wrap_lines=True)
    st.markdown("**Document instruction**")
    st.code(instructions.get("document") or "(none)", language=None, wrap_lines=True)


def _new_collection_form(service: SearchService) -> None:
    st.subheader("New collection")
    name = st.text_input("Name", key="new_name", placeholder="e.g. papers")
    presets = list(DOMAIN_PRESETS)
    preset = st.selectbox(
        "Domain",
        [*presets, "custom"],
        key="new_domain_preset",
        format_func=lambda key: "custom…" if key == "custom" else (DOMAIN_PRESETS[key] or "general"),
    )
    domain = (
        st.text_input("Custom domain", key="new_domain_text", placeholder="e.g. Astronomy") or ""
        if preset == "custom"
        else preset or ""
    )
    template = service.new_record(domain=domain)
    query = st.text_area(
        "Query instruction", template.instructions.get("query") or "", key=f"new_query:{domain}", height=80
    )
    document = st.text_area(
        "Document instruction",
        template.instructions.get("document") or "",
        key=f"new_document:{domain}",
        height=80,
    )
    if st.button("Create collection", type="primary", key="create_collection"):
        try:
            cleaned = validate_collection_name(name)
            record = service.new_record(domain=domain, query_instruction=query, document_instruction=document)
            with _waiting_for_writes(service):
                created = service.create_collection(cleaned, record)
        except USER_ERRORS as exc:
            show_error(exc)
            return
        st.session_state["_select_collection"] = cleaned
        st.session_state["flash"] = f"Created collection {cleaned} ({created.model})."
        st.rerun()


def _search_section(service: SearchService, state: PageState, documents: list[DocumentManifest]) -> None:
    if not documents:
        st.info(
            "No documents yet. Upload PDFs, text or Markdown files in the **Documents** tab.",
            icon=":material/inbox:",
        )
        return
    query = st.text_input(
        "Search your documents",
        key="query",
        placeholder="Ask a question or type a few words, then press Enter",
        max_chars=MAX_QUERY_CHARS,
    )
    labels = _document_labels(documents)
    chosen = st.multiselect(
        "Only in these documents",
        list(labels),
        key="filter_documents",
        format_func=lambda source: labels.get(source, source),
        placeholder="All documents",
    )
    if not query:
        st.caption(f"{plural(len(documents), 'document')} in {md_code(state.collection)}.")
        return
    try:
        result = service.search(
            query,
            collection=state.collection,
            top_k=state.top_k,
            score_threshold=state.threshold,
            documents=chosen or None,
            mode=state.mode,
        )
    except USER_ERRORS as exc:
        show_error(exc)
        return
    _results(service, result, state)


def _document_labels(documents: list[DocumentManifest]) -> dict[str, str]:
    counts: dict[str, int] = {}
    for doc in documents:
        counts[doc.file_name] = counts.get(doc.file_name, 0) + 1
    return {
        doc.source: doc.file_name if counts[doc.file_name] == 1 else f"{doc.file_name} ({doc.source})"
        for doc in documents
    }


def _results(service: SearchService, result: SearchResult, state: PageState) -> None:
    instruction = result.instruction or "(no instruction)"
    st.caption(
        f"{plural(len(result.hits), 'hit')} in {result.seconds * 1000:.0f} ms · mode **{md_escape(result.mode)}** · "
        f"query instruction: “{md_escape(instruction)}”"
    )
    if result.note:
        st.info(result.note, icon=":material/info:")
    if not result.hits:
        if state.threshold is not None:
            st.warning(
                f"No hits above the minimum score {state.threshold:.2f}. Lower it in the sidebar.",
                icon=":material/search_off:",
            )
        else:
            st.warning(
                "No hits. Try other words, or remove the document filter.", icon=":material/search_off:"
            )
        return
    terms = query_terms(result.query)
    for rank, hit in enumerate(result.hits, start=1):
        st.html(hit_card_html(rank, hit, terms))
        label = "Show page" if hit.page is not None else "Show file"
        if st.toggle(
            label, key=f"show_page:{hit.id}", help="the page with the passage highlighted, and the file"
        ):
            page_view(service, hit)


# -- a hit's page and file -----------------------------------------------------------------------------


def page_view(service: SearchService, hit: Hit) -> None:
    """A hit's page as an image (passage highlighted) and its file for download, or why not.

    The page is rendered once and kept for the session (:func:`_page_image`). An encrypted PDF
    asks for its password here; the field is drawn only while the page cannot be shown, so its
    value leaves the session as soon as the page shows.
    """
    box = st.container(border=True)
    password_key = f"page_password:{hit.id}"
    with box:
        try:
            image = (
                _page_image(service, hit, st.session_state.get(password_key) or None) if hit.page else None
            )
        except PasswordRequiredError as exc:
            if exc.wrong:
                show_error(exc)
            else:
                st.info(md_escape(str(exc)), icon=":material/lock:")
            st.text_input(f"Password of {md_escape(hit.file_name)}", type="password", key=password_key)
            image = None
        except USER_ERRORS as exc:
            show_error(exc)
            return
        if image is not None:
            st.image(image.png, caption=page_caption(image), width=min(image.width, _PAGE_WIDTH))
        _download_button(service, hit)


def page_caption(image: PageImage) -> str:
    """``page 3 of 7 · passage highlighted`` (or why it is not), ``· OCR`` for an OCR'd page."""
    found = "passage highlighted" if image.highlighted else "the passage could not be placed on the page"
    return f"page {image.page} of {image.page_count} · {found}" + (" · OCR" if image.ocr else "")


def _page_image(service: SearchService, hit: Hit, password: str | None) -> PageImage:
    """The hit's page, rendered once per session (the latest :data:`_PAGE_IMAGES_KEPT` are kept)."""
    kept: dict[str, PageImage] = st.session_state.setdefault("_page_images", {})
    key = f"{hit.file_sha256}:{hit.page}:{hit.id}"
    image = kept.pop(key, None)
    if image is None:
        with st.spinner(f"Rendering page {hit.page} of {md_escape(hit.file_name)}…"):
            image = service.page_view(hit, password=password)
    kept[key] = image  # newest last
    while len(kept) > _PAGE_IMAGES_KEPT:
        kept.pop(next(iter(kept)))
    return image


def _download_button(service: SearchService, hit: Hit) -> None:
    location = service.files.locate(hit)
    if location.path is None:
        show_error(location.reason or f"no file of {hit.file_name} is kept")
        return
    st.download_button(
        f"Download {md_escape(hit.file_name)}",
        data=functools.partial(service.files.read, hit),  # read only when clicked
        file_name=hit.file_name,
        mime=media_type(hit.file_name),
        key=f"download:{hit.id}",
        icon=":material/download:",
        on_click="ignore",
    )


def _flash() -> None:
    message = st.session_state.pop("flash", None)
    if message:
        st.success(md_escape(message), icon=":material/check_circle:")


# -- documents: upload, outcomes, list, delete ---------------------------------------------------------


def _documents_section(service: SearchService, state: PageState, documents: list[DocumentManifest]) -> None:
    job: UploadJob | None = st.session_state.get("upload_job")
    if job is not None:
        follow_upload(service, job)  # until it ends; then the outcome is shown after a rerun
    else:
        _upload_form(service, state)
    _show_outcome(st.session_state.get("upload_outcome"))
    _document_list(service, state, documents)


def _upload_form(service: SearchService, state: PageState) -> None:
    limit = service.settings.app.max_upload_mb
    with st.form("upload", clear_on_submit=True, border=True):
        st.file_uploader(
            f"Add PDF, text or Markdown files (up to {limit} MB each)",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
            key="uploads",
            max_upload_size=limit,
        )
        st.text_input(
            "Password for encrypted PDFs (optional)",
            type="password",
            key="upload_password",
            help="Used to open the encrypted PDFs of this upload only: never stored, logged or shown.",
        )
        st.form_submit_button(
            "Upload and index", type="primary", on_click=submit_upload, args=(service, state.collection)
        )
    if st.session_state.pop("_choose_files", False):
        st.warning("Choose one or more files first.", icon=":material/attach_file:")


def submit_upload(service: SearchService, collection: str) -> None:
    """The upload form's submit callback: start the upload (the page then follows it).

    It runs before the script, so it can clear the password field in the session at once: the
    password goes to the upload job alone, which drops it when the ingest ends.
    """
    password = st.session_state.get("upload_password") or None
    st.session_state["upload_password"] = ""
    files = [(upload.name, upload.getvalue()) for upload in st.session_state.get("uploads") or []]
    if not files:
        st.session_state["_choose_files"] = True
        return
    job = start_upload(service, collection, files, password=password)
    del password
    st.session_state.pop("upload_outcome", None)
    if job.done.is_set():  # nothing to ingest (every file over the limit)
        st.session_state["upload_outcome"] = job.outcome()
    else:
        st.session_state["upload_job"] = job


def follow_upload(service: SearchService, job: UploadJob) -> None:
    """Show a running upload's progress, with a Cancel button, until it ends; then rerun the page.

    A click anywhere (Cancel included) reruns the script, which comes back here: the job goes on
    in its thread meanwhile.
    """
    box = st.container(border=True)
    box.markdown(f"**Indexing {plural(len(job.sources), 'file')} into** {md_code(job.collection)} …")
    status = box.empty()
    bars = [box.progress(0.0, text=f"{md_escape(source.file_name)}: waiting") for source in job.sources]
    if job.cancel.is_set():
        box.button("Cancelling…", key="cancelling_upload", disabled=True, icon=":material/cancel:")
    elif box.button("Cancel upload", key="cancel_upload", icon=":material/cancel:"):
        job.cancel.set()
        box.caption("Cancelling: files not stored yet are rolled back; stored files are kept.")
    shown: dict[int, ProgressEvent] = {}
    while True:
        finished = job.done.wait(_POLL_SECONDS)
        for index, event in list(job.events.items()):
            if shown.get(index) != event and index < len(bars):
                shown[index] = event
                _draw_progress(bars[index], event)
        if finished:
            break
        waiting = not job.events and service.write_lock.locked()
        status.caption(
            ("Waiting for another upload or delete to finish… " if waiting else "")
            + f"{time.monotonic() - job.started:.0f} s"
        )
    st.session_state["upload_outcome"] = job.outcome()
    st.session_state.pop("upload_job", None)
    st.rerun()


def _draw_progress(bar: Any, event: ProgressEvent) -> None:
    name = md_escape(event.file_name)
    if event.stage == "reading":
        bar.progress(0.02, text=f"{name}: reading")
    elif event.stage == "embedding":
        fraction = event.chunks_done / event.chunks_total if event.chunks_total else 0.0
        bar.progress(
            min(0.02 + 0.96 * fraction, 0.98),
            text=f"{name}: embedding {event.chunks_done}/{plural(event.chunks_total, 'chunk')}",
        )
    elif event.stage == "stored":
        bar.progress(1.0, text=f"{name}: stored ({plural(event.chunks_total, 'chunk')})")
    elif event.stage == "skipped":
        bar.progress(1.0, text=f"{name}: unchanged")
    else:
        bar.progress(1.0, text=f"{name}: {md_escape(str(event.stage))}")


@contextlib.contextmanager
def _waiting_for_writes(service: SearchService) -> Iterator[None]:
    """A spinner while another session's upload or delete holds the write lock."""
    if not service.write_lock.locked():
        yield
        return
    with st.spinner("Waiting for another upload or delete to finish…"):
        yield


def outcome_line(result: FileResult) -> str:
    """One line (Markdown, escaped) describing what happened to a file: chunks, pages, OCR'd pages, warning."""
    name = f"**{md_escape(result.file_name or result.path)}**"
    if result.status == "failed":
        return f"{name} — failed: {md_escape(for_the_page(result.error or 'unknown reason'))}"
    if result.status == "cancelled":
        note = f" · {md_escape(result.note)}" if result.note else ""
        return f"{name} — cancelled: not stored (rolled back){note}"
    pages = f" from {plural(result.pages, 'page')}" if result.pages else ""
    detail = f"{plural(result.chunks, 'chunk')}{pages}"
    if result.status == "unchanged":
        detail = f"already stored, nothing to do ({detail})"
    if result.ocr_pages:
        detail += f" · {plural(len(result.ocr_pages), 'page')} OCR'd"
    warning = f" · warning: {md_escape(result.warning)}" if result.warning else ""
    note = f" · {md_escape(result.note)}" if result.note else ""
    return f"{name} — {result.status}: {detail}{warning}{note}"


def _show_outcome(outcome: UploadOutcome | None) -> None:
    if outcome is None:
        return
    counts: dict[str, int] = {}
    for result in outcome.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    st.markdown(f"**Last upload** ({summary or 'no files'}; {outcome.seconds:.1f} s)")
    if outcome.error:
        show_error(outcome.error)  # worded for the page
    for result in outcome.results:
        line, icon = outcome_line(result), _STATUS_ICON.get(result.status)
        if result.status == "failed":
            st.error(line, icon=icon)
        elif result.status in ("cancelled", "skipped") or result.warning:
            st.warning(line, icon=icon)
        elif result.status == "unchanged":
            st.info(line, icon=icon)
        else:
            st.success(line, icon=icon)


def _document_list(service: SearchService, state: PageState, documents: list[DocumentManifest]) -> None:
    st.subheader(f"Documents in {md_code(state.collection)}")
    if not documents:
        st.info("No documents yet. Add some above.", icon=":material/inbox:")
        return
    total = sum(doc.chunks for doc in documents)
    st.caption(f"{plural(len(documents), 'document')} · {plural(total, 'chunk')}")
    labels = _document_labels(documents)
    for doc in documents:
        row = st.container(border=True)
        name_col, info_col, action_col = row.columns([6, 3, 2], vertical_alignment="center")
        name_col.markdown(f":material/description: **{md_escape(labels[doc.source])}**")
        pages = f" · {plural(doc.pages, 'page')}" if doc.pages else ""
        info_col.caption(f"{plural(doc.chunks, 'chunk')}{pages} · {doc.ingested_at[:10]}")
        with action_col.popover("Delete", icon=":material/delete:"):
            st.markdown(f"Delete **{md_escape(doc.file_name)}** and its {plural(doc.chunks, 'chunk')}?")
            if st.button("Yes, delete", key=f"delete:{doc.source}", type="primary"):
                try:
                    with _waiting_for_writes(service):
                        removed = service.delete_document(doc.source, state.collection)
                except USER_ERRORS as exc:
                    show_error(exc)
                    return
                st.session_state["flash"] = f"Deleted {doc.file_name} ({plural(removed, 'chunk')})."
                st.session_state.pop("upload_outcome", None)
                st.rerun()


# -- adaptation to a collection (background job) -----------------------------------------------------

#: What each stage of an adaptation is called on the page.
_ADAPT_STAGES = {"data": "Training data", "train": "Fine-tuning", "reembed": "Re-embedding"}
#: Seconds between two looks at a running adaptation (the sidebar fragment reruns alone).
_ADAPT_POLL_SECONDS = 1.0


def adapt_section(service: SearchService, collection: str, record: CollectionRecord) -> None:
    """The "Adapt to this collection" action of a collection, or the progress of its running job."""
    origin = derived_from(record)
    if origin is not None:
        st.caption(
            f"Adapted from {md_code(str(origin.get('collection')))}: searched with its fine-tuned model "
            f"{md_code(record.model)}."
        )
    if adapt_job(service, collection) is not None:
        _follow_adapt(service, collection)
        return
    fake = record.model == FakeEmbedder.model_id
    if st.button(
        "Adapt to this collection",
        key=f"adapt:{collection}",
        icon=":material/model_training:",
        disabled=fake,
        help="Built with the fake embedder, which cannot be fine-tuned."
        if fake
        else "Fine-tunes the model on training data made from this collection's own documents (no "
        "labels), then re-embeds them into a new collection. This collection is not changed, and "
        "searching goes on meanwhile. An interrupted run resumes when started again.",
    ):
        start_adapt(service, collection)
        _follow_adapt(service, collection)


@st.fragment(run_every=_ADAPT_POLL_SECONDS)
def _follow_adapt(service: SearchService, collection: str) -> None:
    """The job's progress, redrawn every second on its own; the whole page reruns once when it ends."""
    job = adapt_job(service, collection)
    if job is None:
        return
    box = st.container(border=True)
    box.markdown(f"**Adapting** {md_code(collection)} · {job.seconds:.0f} s")
    for stage, label in _ADAPT_STAGES.items():
        event = job.stages.get(stage)
        if event is not None:
            fraction = min(event.done / event.total, 1.0) if event.total else 0.0
            detail = f" ({md_escape(event.detail)})" if event.detail else ""
            box.progress(fraction, text=f"{label}: {event.done}/{event.total or '?'}{detail}")
    if not job.done.is_set():
        if job.cancel.is_set():
            box.caption("Cancelling after the current step…")
        elif box.button("Cancel", key=f"cancel_adapt:{collection}", icon=":material/cancel:"):
            job.cancel.set()
        return
    _adapt_outcome(box, job)
    if box.button("Dismiss", key=f"dismiss_adapt:{collection}"):
        dismiss_adapt(service, collection)
        st.rerun()
    seen = st.session_state.setdefault("_adapt_seen", set())
    if id(job) not in seen:  # the new collection joins the list: redraw the whole page once
        seen.add(id(job))
        st.rerun(scope="app")


def _adapt_outcome(box: Any, job: AdaptJob) -> None:
    result = job.result
    if result is not None:
        box.success(
            f"Created {md_code(result.target)} with the adapted model ({plural(result.train.steps, 'step')}, "
            f"{plural(result.reembed.points, 'chunk')}). {md_code(job.collection)} is unchanged; pick {md_code(result.target)} "
            "in the collection list to search it with its fine-tuned model.",
            icon=":material/check_circle:",
        )
    elif job.cancelled:
        box.warning("Cancelled. What was done is kept: adapt again to resume.", icon=":material/cancel:")
    else:
        box.error(md_escape(redact_text(job.error or "the adaptation failed")), icon=":material/error:")

"""LangChain embeddings with INSTRUCTOR-style instructions that can change per instance and per call.

``InstructorEmbeddings`` is a :class:`langchain_core.embeddings.Embeddings`: ``embed_documents``
embeds under the document instruction and ``embed_query`` under the query instruction. Unlike
LangChain's own ``HuggingFaceInstructEmbeddings`` (which fixes both instructions per instance,
langchain issue 8176), the domain or the instructions can be changed:

* per instance: ``InstructorEmbeddings(domain="medicine")``, ``query_instruction=...``,
  ``document_instruction=...``, or a copy with :meth:`InstructorEmbeddings.with_domain` /
  :meth:`InstructorEmbeddings.with_instructions` (copies share the loaded model);
* per call: ``embed_query(text, instruction=...)`` or ``embed_documents(texts, domain=...)``.

An instruction given as ``""`` means "no instruction". The model is loaded on first use through
:func:`embedder.make_embedder`, unless a ready :class:`~embedder.backends.Embedder` is passed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from config.settings import EmbedderBackend, ModelSettings
from embedder.base import Embedder
from embedder.errors import InputError
from embedder.factory import make_embedder
from embedder.instructions import InstructionSet, build_instruction, validate_instruction

if TYPE_CHECKING:
    from config import Settings

__all__ = ["MODEL_FIELDS", "InstructorEmbeddings"]

#: The :class:`~config.ModelSettings` fields the embeddings take by name (``model_name`` is ``name``,
#: as in LangChain's other embeddings); each is also readable as an attribute of the same name.
MODEL_FIELDS = {
    "model_name": "name",
    "backend": "backend",
    "device": "device",
    "batch_size": "batch_size",
    "max_seq_length": "max_seq_length",
    "normalize": "normalize",
}


class _EmbedderHolder:
    """The lazily loaded embedder, shared by an instance and the copies made from it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.embedder: Embedder | None = None


def _custom(instruction: str | None) -> str | None:
    """``None``: use the template; ``""``: no instruction; anything else: validated custom text."""
    if instruction is None:
        return None
    if not instruction.strip():
        return ""
    return validate_instruction(instruction)


class InstructorEmbeddings(BaseModel, Embeddings):
    """LangChain embeddings with query and document instructions from the INSTRUCTOR template.

    Example:
        >>> emb = InstructorEmbeddings(domain="medicine", backend="fake")
        >>> emb.instructions.document
        'Represent the Medicine document for retrieval:'
        >>> len(emb.embed_query("fever after travel", instruction="Represent the question:"))
        64

    Attributes:
        embedder: a ready embedder to use; ``None`` loads one from :attr:`model_settings` on first use.
        model_settings: the model to load (:class:`~config.ModelSettings`). Its fields can be
            given by name instead (``model_name``, ``backend``, ``device``, ``batch_size``,
            ``max_seq_length``, ``normalize``; see :data:`MODEL_FIELDS`), and are readable as
            attributes of those names.
        domain: the template's ``{domain}`` (a preset key such as ``medicine`` or free text).
        query_instruction: custom query instruction (``None``: template; ``""``: none).
        document_instruction: custom document instruction (``None``: template; ``""``: none).
        instructions_enabled: ``False`` embeds without instructions unless a call passes one.
        show_progress: show a progress bar while embedding.
    """

    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", protected_namespaces=(), frozen=True
    )

    embedder: Embedder | None = Field(default=None, exclude=True, repr=False)
    model_settings: ModelSettings = Field(default_factory=ModelSettings)
    domain: str = ""
    query_instruction: str | None = None
    document_instruction: str | None = None
    instructions_enabled: bool = True
    show_progress: bool = False

    _holder: _EmbedderHolder = PrivateAttr(default_factory=_EmbedderHolder)

    @model_validator(mode="before")
    @classmethod
    def _gather_model_fields(cls, data: Any) -> Any:
        """``model_name=``, ``backend=`` ... (:data:`MODEL_FIELDS`) go into :attr:`model_settings`."""
        if not isinstance(data, dict) or not MODEL_FIELDS.keys() & data.keys():
            return data
        data = dict(data)
        base = data.pop("model_settings", None)
        fields = base.model_dump(exclude_unset=True) if isinstance(base, ModelSettings) else dict(base or {})
        for ours, theirs in MODEL_FIELDS.items():
            if ours in data:
                fields[theirs] = data.pop(ours)
        return {**data, "model_settings": fields}

    @field_validator("query_instruction", "document_instruction")
    @classmethod
    def _valid_instruction(cls, value: str | None) -> str | None:
        return _custom(value)

    # -- the model fields (ModelSettings' own, under the names LangChain users know) ------------

    @property
    def model_name(self) -> str:
        """``model_settings.name``: ``"default"`` (bundled all-MiniLM-L6-v2), a folder or a hub name."""
        return self.model_settings.name

    @property
    def backend(self) -> EmbedderBackend:
        """``model_settings.backend``: ``sentence-transformers`` or ``fake``."""
        return self.model_settings.backend

    @property
    def device(self) -> str | None:
        """``model_settings.device``: the torch device (``None``: picked automatically)."""
        return self.model_settings.device

    @property
    def batch_size(self) -> int:
        """``model_settings.batch_size``: texts per forward pass."""
        return self.model_settings.batch_size

    @property
    def max_seq_length(self) -> int | None:
        """``model_settings.max_seq_length``: the token limit override (``None``: the model's)."""
        return self.model_settings.max_seq_length

    @property
    def normalize(self) -> bool:
        """``model_settings.normalize``: whether the vectors are L2-normalised."""
        return self.model_settings.normalize

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_settings(cls, settings: Settings, *, embedder: Embedder | None = None) -> InstructorEmbeddings:
        """Embeddings configured by the ``model`` and ``instructions`` sections of the settings.

        Args:
            settings: the settings built at the entry point.
            embedder: an already loaded embedder for ``settings.model`` (avoids loading it twice).

        Returns:
            The embeddings object (the model loads on first use when ``embedder`` is ``None``).
        """
        instructions = settings.instructions
        return cls(
            embedder=embedder,
            model_settings=settings.model,
            domain=instructions.domain,
            query_instruction=instructions.query,
            document_instruction=instructions.document,
            instructions_enabled=instructions.enabled,
        )

    @classmethod
    def from_instruction_set(
        cls, instructions: InstructionSet, *, embedder: Embedder | None = None, **kwargs: Any
    ) -> InstructorEmbeddings:
        """Embeddings that use exactly the instructions of ``instructions`` (``None`` sides: none).

        Args:
            instructions: e.g. ``InstructionSet.symmetric("sts")``.
            embedder: a ready embedder, or ``None`` to load one from ``kwargs``.
            **kwargs: other fields (``model_name``, ``backend``, ...).

        Returns:
            The embeddings object.
        """
        return cls(
            embedder=embedder,
            query_instruction=instructions.query or "",
            document_instruction=instructions.document or "",
            **kwargs,
        )

    def with_domain(self, domain: str) -> InstructorEmbeddings:
        """A copy whose template instructions use another domain (the model is shared).

        Args:
            domain: a preset key (``medicine``) or free text; ``""`` leaves the domain out.

        Returns:
            The copy; custom instructions of this instance are kept.
        """
        return self._copy(domain=domain)

    def with_instructions(
        self,
        query: str | None = None,
        document: str | None = None,
        *,
        instruction_set: InstructionSet | None = None,
    ) -> InstructorEmbeddings:
        """A copy with other instructions (the model is shared).

        Args:
            query: new query instruction (``""``: none; ``None``: keep this instance's).
            document: new document instruction (``""``: none; ``None``: keep this instance's).
            instruction_set: take both sides from this set instead (its ``None`` sides: none).

        Returns:
            The copy, with instructions enabled.
        """
        if instruction_set is not None:
            query, document = instruction_set.query or "", instruction_set.document or ""
        update: dict[str, Any] = {"instructions_enabled": True}
        if query is not None:
            update["query_instruction"] = query
        if document is not None:
            update["document_instruction"] = document
        return self._copy(**update)

    def _copy(self, **update: Any) -> InstructorEmbeddings:
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update)
        copy = type(self)(**data)
        copy._holder = self._holder
        return copy

    # -- instructions -------------------------------------------------------------------------

    @property
    def instructions(self) -> InstructionSet:
        """The instance's query and document instructions (``None``: no instruction)."""
        if not self.instructions_enabled:
            return InstructionSet.none()
        template = InstructionSet.for_retrieval(self.domain)
        return InstructionSet(
            query=self._side(self.query_instruction, template.query),
            document=self._side(self.document_instruction, template.document),
        )

    @staticmethod
    def _side(custom: str | None, template: str | None) -> str | None:
        if custom is None:
            return template
        return custom or None

    def _instruction_for(self, role: str, instruction: str | None, domain: str | None) -> str | None:
        """The instruction of one call: explicit text, else the domain's template, else the instance's."""
        if instruction is not None:
            return _custom(instruction) or None
        if domain is not None:
            custom = self.query_instruction if role == "query" else self.document_instruction
            if custom is not None:
                return custom or None
            return build_instruction("retrieval", "query" if role == "query" else "document", domain)
        instructions = self.instructions
        return instructions.query if role == "query" else instructions.document

    # -- the model ----------------------------------------------------------------------------

    def get_embedder(self) -> Embedder:
        """The embedder in use, loaded through :func:`embedder.make_embedder` on first call.

        Raises:
            ModelNotFoundError: the model could not be loaded.
        """
        if self.embedder is not None:
            return self.embedder
        holder = self._holder
        with holder.lock:
            if holder.embedder is None:
                holder.embedder = make_embedder(self.model_settings)
            return holder.embedder

    def _embed(self, texts: Sequence[str], instruction: str | None) -> list[list[float]]:
        if isinstance(texts, str):
            raise InputError("embed_documents expects a list of texts, got a single string; use embed_query")
        if not texts:
            return []
        vectors = self.get_embedder().embed(list(texts), instruction, show_progress=self.show_progress)
        rows: list[list[float]] = vectors.tolist()  # float32 -> Python floats
        return rows

    # -- the Embeddings interface ---------------------------------------------------------------

    def embed_documents(
        self, texts: list[str], *, instruction: str | None = None, domain: str | None = None
    ) -> list[list[float]]:
        """Embed documents under the document instruction.

        Args:
            texts: the documents.
            instruction: this call's instruction (``""``: none); overrides ``domain``.
            domain: this call's domain for the template instruction.

        Returns:
            One vector (a list of floats) per text.
        """
        return self._embed(texts, self._instruction_for("document", instruction, domain))

    def embed_query(
        self, text: str, *, instruction: str | None = None, domain: str | None = None
    ) -> list[float]:
        """Embed a query under the query instruction.

        Args:
            text: the query.
            instruction: this call's instruction (``""``: none); overrides ``domain``.
            domain: this call's domain for the template instruction.

        Returns:
            The vector as a list of floats.
        """
        if not isinstance(text, str):
            raise InputError(f"embed_query expects one string, got {type(text).__name__}")
        return self._embed([text], self._instruction_for("query", instruction, domain))[0]

    async def aembed_documents(
        self, texts: list[str], *, instruction: str | None = None, domain: str | None = None
    ) -> list[list[float]]:
        """Async :meth:`embed_documents` (runs in the default executor)."""
        return await run_in_executor(
            None, self.embed_documents, texts, instruction=instruction, domain=domain
        )

    async def aembed_query(
        self, text: str, *, instruction: str | None = None, domain: str | None = None
    ) -> list[float]:
        """Async :meth:`embed_query` (runs in the default executor)."""
        return await run_in_executor(None, self.embed_query, text, instruction=instruction, domain=domain)

"""Instructions as data, built from the INSTRUCTOR template.

INSTRUCTOR (Su et al., 2022) writes every instruction as
``"Represent the {domain} {text_type} for {objective}:"``. This module is the only place in
instructor-search that knows the wording; everything else asks it for an
:class:`InstructionSet` and passes the strings to the model as prompts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from embedder.errors import InstructionError

TEMPLATE = "Represent the {domain} {text_type} for {objective}:"

Task = Literal["retrieval", "sts", "duplicates", "clustering", "classification", "keywords", "title", "ict"]
Role = Literal["query", "document", "text"]

# (text_type, objective) per task and role, following the INSTRUCTOR paper's wording.
_TASKS: dict[Task, dict[Role, tuple[str, str]]] = {
    "retrieval": {
        "query": ("question", "retrieving supporting documents"),
        "document": ("document", "retrieval"),
    },
    "sts": {"text": ("sentence", "semantic textual similarity")},
    "duplicates": {"text": ("question", "retrieving duplicate questions")},
    "clustering": {"text": ("sentence", "clustering")},
    "classification": {"text": ("text", "classification")},
    # Key phrases of a passage, embedded to enrich the passage's vector (arXiv 2409.16497).
    "keywords": {"text": ("keywords", "retrieving the document they summarise")},
    # Label-free training tasks built from a collection's own chunks (training.builders):
    # a heading against the body it heads, and one sentence against the rest of its passage
    # (the inverse cloze task).
    "title": {"text": ("title", "retrieving the passage it heads")},
    "ict": {"text": ("sentence", "retrieving the passage it comes from")},
}

#: Domain presets: a short key and the phrase that goes into the template.
DOMAIN_PRESETS: dict[str, str] = {
    "general": "",
    "wikipedia": "Wikipedia",
    "science": "Science",
    "medicine": "Medicine",
    "biomedical": "Biomedical",
    "finance": "Financial",
    "legal": "Legal",
    "news": "News",
    "code": "Code",
    "technical": "Technical",
}


def domain_phrase(domain: str) -> str:
    """Map a preset key (``"medicine"``) to its phrase (``"Medicine"``); other text is kept as is.

    Args:
        domain: a preset key or any free text; ``""`` means no domain.

    Returns:
        The phrase to put in the template.
    """
    cleaned = " ".join(domain.split())
    return DOMAIN_PRESETS.get(cleaned.lower(), cleaned)


def build_instruction(task: Task, role: Role, domain: str = "") -> str:
    """Build one instruction from the template.

    Args:
        task: ``retrieval`` (asymmetric, roles ``query``/``document``) or a symmetric task
            (``sts``, ``duplicates``, ``clustering``, ``classification``; role ``text``).
        role: which side of the task the text is on.
        domain: a preset key or free text; ``""`` leaves the domain out.

    Returns:
        For example ``"Represent the Medicine document for retrieval:"``.

    Raises:
        InstructionError: the task or role is unknown.
    """
    roles = _TASKS.get(task)
    if roles is None:
        raise InstructionError(f"unknown task {task!r}; use one of {sorted(_TASKS)}")
    if role not in roles:
        raise InstructionError(f"task {task!r} has no role {role!r}; use one of {sorted(roles)}")
    text_type, objective = roles[role]
    phrase = domain_phrase(domain)
    # Leave no double space when the domain is empty.
    return " ".join(TEMPLATE.format(domain=phrase, text_type=text_type, objective=objective).split())


def validate_instruction(instruction: str) -> str:
    """Check a custom instruction and return it normalised (outer whitespace removed).

    Args:
        instruction: any instruction text.

    Returns:
        The stripped instruction.

    Raises:
        InstructionError: the instruction is empty or absurdly long.
    """
    cleaned = instruction.strip()
    if not cleaned:
        raise InstructionError(
            "an empty instruction is not allowed here; disable instructions instead "
            "(INSTRUCTOR_SEARCH_INSTRUCTIONS__ENABLED=false)"
        )
    if len(cleaned) > 500:
        raise InstructionError(
            f"instruction of {len(cleaned)} characters is too long (max 500): {cleaned[:60]!r}..."
        )
    return cleaned


@dataclass(frozen=True)
class InstructionSet:
    """The query and document instructions of one collection.

    ``None`` means "no instruction" (the plain model, as MTEB evaluates it).

    Attributes:
        query: instruction for queries.
        document: instruction for documents (chunks).
    """

    query: str | None
    document: str | None

    @classmethod
    def for_retrieval(
        cls,
        domain: str = "",
        *,
        query: str | None = None,
        document: str | None = None,
        enabled: bool = True,
    ) -> InstructionSet:
        """Retrieval instructions for a domain, with optional custom wording.

        Args:
            domain: preset key or free text.
            query: custom query instruction (replaces the template's).
            document: custom document instruction (replaces the template's).
            enabled: ``False`` returns the instruction-free set.

        Returns:
            The instruction set.
        """
        if not enabled:
            return cls(query=None, document=None)
        return cls(
            query=validate_instruction(query) if query else build_instruction("retrieval", "query", domain),
            document=(
                validate_instruction(document)
                if document
                else build_instruction("retrieval", "document", domain)
            ),
        )

    @classmethod
    def symmetric(cls, task: Task, domain: str = "") -> InstructionSet:
        """One instruction on both sides, for STS, duplicates, clustering or classification."""
        instruction = build_instruction(task, "text", domain)
        return cls(query=instruction, document=instruction)

    @classmethod
    def none(cls) -> InstructionSet:
        """No instruction on either side."""
        return cls(query=None, document=None)

    @staticmethod
    def for_keywords(domain: str = "", *, enabled: bool = True) -> str | None:
        """The instruction key phrases of a passage are embedded under (``None`` when disabled).

        Args:
            domain: preset key or free text.
            enabled: ``False`` embeds key phrases without an instruction, like everything else.

        Returns:
            For example ``"Represent the Science keywords for retrieving the document they summarise:"``.
        """
        return build_instruction("keywords", "text", domain) if enabled else None

    def as_dict(self) -> dict[str, str | None]:
        """The instructions as a JSON-ready dict (stored in collection metadata)."""
        return {"query": self.query, "document": self.document}


def prompt_text(instruction: str | None) -> str | None:
    """The prompt string handed to the model for an instruction.

    A single separating space follows the instruction, as in the INSTRUCTOR paper's examples
    (``"Represent the Wikipedia document for retrieval: "``); the prompt tokens are excluded
    from pooling either way.

    Args:
        instruction: the instruction, or ``None``.

    Returns:
        The prompt, or ``None`` for no instruction.
    """
    if instruction is None or not instruction.strip():
        return None
    return instruction.strip() + " "

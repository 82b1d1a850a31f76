"""Instructions are built in one place, from the INSTRUCTOR template."""

from __future__ import annotations

import pytest

from embedder import (
    DOMAIN_PRESETS,
    TEMPLATE,
    InstructionError,
    InstructionSet,
    build_instruction,
    domain_phrase,
)
from embedder.instructions import prompt_text, validate_instruction


def test_template_wording() -> None:
    assert TEMPLATE == "Represent the {domain} {text_type} for {objective}:"


@pytest.mark.parametrize(
    ("task", "role", "domain", "expected"),
    [
        ("retrieval", "query", "", "Represent the question for retrieving supporting documents:"),
        ("retrieval", "document", "", "Represent the document for retrieval:"),
        (
            "retrieval",
            "query",
            "wikipedia",
            "Represent the Wikipedia question for retrieving supporting documents:",
        ),
        ("retrieval", "document", "medicine", "Represent the Medicine document for retrieval:"),
        ("sts", "text", "", "Represent the sentence for semantic textual similarity:"),
        ("duplicates", "text", "", "Represent the question for retrieving duplicate questions:"),
        ("clustering", "text", "science", "Represent the Science sentence for clustering:"),
        ("classification", "text", "finance", "Represent the Financial text for classification:"),
    ],
)
def test_build_instruction(task: str, role: str, domain: str, expected: str) -> None:
    assert build_instruction(task, role, domain) == expected  # type: ignore[arg-type]


def test_free_text_domain_is_kept_and_whitespace_collapsed() -> None:
    assert domain_phrase("  Marine   Biology ") == "Marine Biology"
    assert build_instruction("retrieval", "document", "Marine Biology") == (
        "Represent the Marine Biology document for retrieval:"
    )


def test_every_preset_builds_a_clean_instruction() -> None:
    assert DOMAIN_PRESETS["general"] == ""
    for key, phrase in DOMAIN_PRESETS.items():
        assert domain_phrase(key) == phrase
        assert domain_phrase(key.upper()) == phrase
        instruction = build_instruction("retrieval", "document", key)
        assert "  " not in instruction
        assert instruction.startswith("Represent the ") and instruction.endswith(" for retrieval:")
        assert phrase in instruction


@pytest.mark.parametrize(("task", "role"), [("search", "query"), ("retrieval", "text"), ("sts", "query")])
def test_unknown_task_or_role(task: str, role: str) -> None:
    with pytest.raises(InstructionError, match=repr(task) if task == "search" else repr(role)):
        build_instruction(task, role)  # type: ignore[arg-type]


def test_retrieval_set_defaults_and_domain() -> None:
    assert InstructionSet.for_retrieval() == InstructionSet(
        query="Represent the question for retrieving supporting documents:",
        document="Represent the document for retrieval:",
    )
    legal = InstructionSet.for_retrieval("legal")
    assert legal.query == "Represent the Legal question for retrieving supporting documents:"
    assert legal.document == "Represent the Legal document for retrieval:"


def test_custom_instructions_replace_the_template_per_side() -> None:
    custom = InstructionSet.for_retrieval("medicine", query="  Represent the patient question:  ")
    assert custom.query == "Represent the patient question:"
    assert custom.document == "Represent the Medicine document for retrieval:"
    both = InstructionSet.for_retrieval(query="Q:", document="D:")
    assert both.as_dict() == {"query": "Q:", "document": "D:"}


def test_disabled_and_none_sets_have_no_instruction() -> None:
    assert InstructionSet.for_retrieval("medicine", enabled=False) == InstructionSet(None, None)
    assert InstructionSet.none().as_dict() == {"query": None, "document": None}


@pytest.mark.parametrize("task", ["sts", "duplicates", "clustering", "classification"])
def test_symmetric_tasks_use_one_instruction(task: str) -> None:
    instructions = InstructionSet.symmetric(task, "science")  # type: ignore[arg-type]
    assert instructions.query == instructions.document
    assert instructions.query == build_instruction(task, "text", "science")  # type: ignore[arg-type]


def test_symmetric_rejects_retrieval() -> None:
    with pytest.raises(InstructionError, match="no role 'text'"):
        InstructionSet.symmetric("retrieval")


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_custom_instruction_is_rejected_with_the_fix(bad: str) -> None:
    with pytest.raises(InstructionError, match="INSTRUCTOR_SEARCH_INSTRUCTIONS__ENABLED=false"):
        validate_instruction(bad)


def test_overlong_custom_instruction_is_rejected_naming_its_length() -> None:
    with pytest.raises(InstructionError, match="501 characters is too long"):
        validate_instruction("x" * 501)
    assert validate_instruction("x" * 500) == "x" * 500


def test_prompt_text_adds_one_separating_space() -> None:
    assert prompt_text("Represent the document for retrieval:") == "Represent the document for retrieval: "
    assert prompt_text("  Q:\n") == "Q: "
    assert prompt_text(None) is None
    assert prompt_text("   ") is None


def test_instruction_set_is_immutable() -> None:
    instructions = InstructionSet.for_retrieval()
    with pytest.raises(AttributeError):
        instructions.query = "changed"  # type: ignore[misc]

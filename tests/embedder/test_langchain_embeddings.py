"""`embedder.langchain.InstructorEmbeddings`: the langchain-tests standard suites and instruction overrides."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_tests.integration_tests import EmbeddingsIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from pydantic import ValidationError

from config import load_settings
from embedder import FakeEmbedder, InputError, InstructionError, InstructionSet, SentenceTransformerEmbedder
from embedder.langchain import InstructorEmbeddings

TEXTS = ["Aspirin reduces fever.", "Bonds rallied on Friday.", "Ibuprofen is an anti-inflammatory drug."]
TEXT = "which drug lowers a fever?"


# -- the standard suites --------------------------------------------------------------------------


class TestInstructorEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"backend": "fake", "domain": "medicine"}


@pytest.mark.real_model
class TestInstructorEmbeddingsIntegration(EmbeddingsIntegrationTests):
    """The standard integration suite with the real default model (all-MiniLM-L6-v2)."""

    @property
    def embeddings_class(self) -> type[InstructorEmbeddings]:
        return InstructorEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, object]:
        return {"model_name": "default", "device": "cpu"}


# -- which instruction is used --------------------------------------------------------------------


def _fake(**kwargs: object) -> tuple[InstructorEmbeddings, FakeEmbedder]:
    reference = FakeEmbedder()
    return InstructorEmbeddings(embedder=FakeEmbedder(), **kwargs), reference  # type: ignore[arg-type]


def test_is_a_langchain_embeddings() -> None:
    assert issubclass(InstructorEmbeddings, Embeddings)


def test_documents_use_the_document_instruction_and_queries_the_query_one() -> None:
    emb, ref = _fake()
    retrieval = InstructionSet.for_retrieval()
    docs = emb.embed_documents(TEXTS)
    query = emb.embed_query(TEXT)
    assert isinstance(docs, list) and all(isinstance(row, list) for row in docs)
    assert all(isinstance(x, float) for x in query)
    np.testing.assert_allclose(docs, ref.embed(TEXTS, retrieval.document), atol=1e-7)
    np.testing.assert_allclose(query, ref.embed([TEXT], retrieval.query)[0], atol=1e-7)
    assert not np.allclose(emb.embed_documents([TEXT])[0], query)


def test_instance_domain_and_custom_instructions() -> None:
    emb, ref = _fake(domain="medicine", query_instruction="Represent the patient question:")
    assert emb.instructions == InstructionSet(
        query="Represent the patient question:", document="Represent the Medicine document for retrieval:"
    )
    np.testing.assert_allclose(
        emb.embed_query(TEXT), ref.embed([TEXT], "Represent the patient question:")[0], atol=1e-7
    )
    np.testing.assert_allclose(
        emb.embed_documents(TEXTS),
        ref.embed(TEXTS, "Represent the Medicine document for retrieval:"),
        atol=1e-7,
    )


def test_empty_instruction_means_none_and_disabled_means_none() -> None:
    emb, ref = _fake(document_instruction="")
    assert emb.instructions.document is None
    np.testing.assert_allclose(emb.embed_documents(TEXTS), ref.embed(TEXTS, None), atol=1e-7)
    off, _ = _fake(instructions_enabled=False, domain="medicine")
    assert off.instructions == InstructionSet.none()
    np.testing.assert_allclose(off.embed_query(TEXT), ref.embed([TEXT], None)[0], atol=1e-7)


def test_per_call_instruction_and_domain() -> None:
    emb, ref = _fake(domain="medicine")
    custom = "Represent the Finance question for retrieving supporting documents:"
    np.testing.assert_allclose(
        emb.embed_query(TEXT, instruction=custom), ref.embed([TEXT], custom)[0], atol=1e-7
    )
    np.testing.assert_allclose(
        emb.embed_documents(TEXTS, domain="legal"),
        ref.embed(TEXTS, "Represent the Legal document for retrieval:"),
        atol=1e-7,
    )
    np.testing.assert_allclose(emb.embed_query(TEXT, instruction=""), ref.embed([TEXT], None)[0], atol=1e-7)
    # An explicit instruction wins over a domain in the same call.
    np.testing.assert_allclose(
        emb.embed_query(TEXT, instruction=custom, domain="legal"), ref.embed([TEXT], custom)[0], atol=1e-7
    )
    # The instance is unchanged by per-call overrides.
    assert emb.instructions == InstructionSet.for_retrieval("medicine")
    np.testing.assert_allclose(
        emb.embed_query(TEXT), ref.embed([TEXT], InstructionSet.for_retrieval("medicine").query)[0], atol=1e-7
    )


def test_per_call_domain_keeps_an_instance_custom_instruction() -> None:
    emb, ref = _fake(query_instruction="Q:")
    np.testing.assert_allclose(emb.embed_query(TEXT, domain="legal"), ref.embed([TEXT], "Q:")[0], atol=1e-7)


def test_copies_override_per_instance_and_share_the_model() -> None:
    emb = InstructorEmbeddings(backend="fake")
    medicine = emb.with_domain("medicine")
    custom = emb.with_instructions(query="Q:", document="D:")
    sts = emb.with_instructions(instruction_set=InstructionSet.symmetric("sts"))
    assert emb.instructions == InstructionSet.for_retrieval()
    assert medicine.instructions == InstructionSet.for_retrieval("medicine")
    assert custom.instructions == InstructionSet("Q:", "D:")
    assert sts.instructions == InstructionSet.symmetric("sts")
    assert emb.with_instructions(query="Q2:").instructions.document == emb.instructions.document
    # One model behind all of them, loaded once.
    loaded = emb.get_embedder()
    assert (
        medicine.get_embedder() is loaded and custom.get_embedder() is loaded and sts.get_embedder() is loaded
    )
    # Symmetric instructions give the same vector on both sides.
    np.testing.assert_allclose(sts.embed_query(TEXT), sts.embed_documents([TEXT])[0], atol=1e-7)


def test_with_instructions_re_enables_instructions() -> None:
    off = InstructorEmbeddings(backend="fake", instructions_enabled=False)
    on = off.with_instructions(query="Q:")
    assert on.instructions == InstructionSet(query="Q:", document="Represent the document for retrieval:")


def test_instances_are_immutable() -> None:
    emb = InstructorEmbeddings(backend="fake")
    with pytest.raises(ValidationError, match="frozen"):
        emb.domain = "medicine"  # type: ignore[misc]


def test_from_settings() -> None:
    settings = load_settings(
        model={"backend": "fake", "batch_size": 3, "normalize": False},
        instructions={"domain": "science", "document": "Represent the paper:"},
    )
    emb = InstructorEmbeddings.from_settings(settings)
    assert (emb.backend, emb.batch_size, emb.normalize) == ("fake", 3, False)
    assert emb.instructions == InstructionSet(
        query="Represent the Science question for retrieving supporting documents:",
        document="Represent the paper:",
    )
    embedder = emb.get_embedder()
    assert isinstance(embedder, FakeEmbedder) and embedder.normalize is False
    shared = FakeEmbedder()
    assert InstructorEmbeddings.from_settings(settings, embedder=shared).get_embedder() is shared


def test_from_instruction_set() -> None:
    emb = InstructorEmbeddings.from_instruction_set(InstructionSet.none(), backend="fake")
    assert emb.instructions == InstructionSet.none()
    sts = InstructorEmbeddings.from_instruction_set(InstructionSet.symmetric("sts"), embedder=FakeEmbedder())
    assert sts.instructions == InstructionSet.symmetric("sts")


def test_model_loads_lazily_and_once_across_threads() -> None:
    emb = InstructorEmbeddings(backend="fake")
    assert emb._holder.embedder is None  # constructing loads nothing
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(emb.get_embedder())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and all(result is results[0] for result in results)


def test_invalid_values() -> None:
    with pytest.raises(ValidationError, match="too long"):
        InstructorEmbeddings(backend="fake", query_instruction="x" * 600)
    with pytest.raises(ValidationError, match="embedder"):
        InstructorEmbeddings(embedder="not an embedder")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="backend"):
        InstructorEmbeddings(backend="onnx")  # type: ignore[arg-type]
    emb = InstructorEmbeddings(backend="fake")
    with pytest.raises(InstructionError, match="too long"):
        emb.embed_query(TEXT, instruction="x" * 600)
    with pytest.raises(InputError, match="single string"):
        emb.embed_documents("not a list")  # type: ignore[arg-type]
    assert emb.embed_documents([]) == []


# -- async ----------------------------------------------------------------------------------------


async def test_async_matches_sync_with_overrides() -> None:
    emb = InstructorEmbeddings(backend="fake", domain="medicine")
    assert await emb.aembed_documents(TEXTS) == emb.embed_documents(TEXTS)
    assert await emb.aembed_query(TEXT) == emb.embed_query(TEXT)
    assert await emb.aembed_query(TEXT, instruction="Q:") == emb.embed_query(TEXT, instruction="Q:")
    assert await emb.aembed_documents(TEXTS, domain="legal") == emb.embed_documents(TEXTS, domain="legal")
    assert await emb.aembed_query(TEXT, instruction="Q:") != await emb.aembed_query(TEXT)


async def test_async_calls_run_concurrently_on_one_model() -> None:
    emb = InstructorEmbeddings(backend="fake")
    copies = [emb.with_domain(domain) for domain in ("medicine", "legal", "finance", "")]
    vectors = await asyncio.gather(*(copy.aembed_query(TEXT) for copy in copies))
    assert len({tuple(v) for v in vectors}) == 4
    assert all(copy.get_embedder() is emb.get_embedder() for copy in copies)


# -- inside LangChain -----------------------------------------------------------------------------


def test_works_in_a_langchain_vector_store() -> None:
    emb = InstructorEmbeddings(backend="fake")
    store = InMemoryVectorStore.from_texts(TEXTS, emb)
    hits = store.similarity_search("aspirin fever", k=1)
    assert hits[0].page_content == "Aspirin reduces fever."


@pytest.mark.real_model
def test_real_model_per_call_override_changes_the_vector(real_embedder: SentenceTransformerEmbedder) -> None:
    emb = InstructorEmbeddings(embedder=real_embedder)
    default = np.array(emb.embed_query(TEXT))
    plain = np.array(emb.embed_query(TEXT, instruction=""))
    medicine = np.array(emb.embed_query(TEXT, domain="medicine"))
    np.testing.assert_allclose(plain, real_embedder.embed([TEXT], None)[0], atol=1e-6)
    np.testing.assert_allclose(
        default, real_embedder.embed([TEXT], InstructionSet.for_retrieval().query)[0], atol=1e-6
    )
    assert default @ plain < 0.999 and default @ medicine < 0.9999
    store = InMemoryVectorStore.from_texts(TEXTS, emb)
    assert store.similarity_search(TEXT, k=1)[0].page_content == "Aspirin reduces fever."

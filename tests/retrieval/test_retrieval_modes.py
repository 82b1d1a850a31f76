"""Hybrid and multi-representation retrieval: sparse BM25 vectors, sentence MaxSim, keyword-augmented
vectors, questions, fusion, modes end to end (fake embedder; everything else real)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from config import Settings, load_settings, override
from embedder import InstructionSet, make_embedder
from ingest.pipeline import ingest_files
from ingest.sources import SourceFile
from representations.augmented import KEYWORD_MEAN_VECTOR, KEYWORD_VECTOR, KeywordExtractor, QuestionGenerator
from representations.errors import RepresentationError
from representations.sentences import SENTENCE_VECTOR, SentenceSplitter
from representations.sparse import SPARSE_VECTOR, SparseEncoder
from retrieval.engine import options_from, search
from retrieval.errors import ModeUnavailableError, QueryError
from retrieval.modes import MODES, available_modes
from store.client import open_client
from store.core import VectorStore

DOCS = {
    "cats.txt": "Cats sleep most of the day. A sleeping cat dreams of warm sunlight on the windowsill.",
    "volcano.txt": "Lava erupts from volcanoes under high pressure. Volcanic ash travels far in the wind.",
    "statins.txt": "Statins lower blood cholesterol levels. Doctors prescribe statins after heart attacks.",
    "aspirin.txt": "Aspirin reduces fever and headache pain. It also thins the blood a little.",
}


def all_settings(tmp_path: Path, **index: object) -> Settings:
    sections = {"sparse": {"enabled": True}, "sentences": {"enabled": True}, "keywords": {"enabled": True}}
    sections.update(index)  # type: ignore[arg-type]
    return load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"}, index=sections)


def build(settings: Settings, name: str = "modes") -> VectorStore:
    client = open_client(settings)
    store = VectorStore(client, name)
    files = [SourceFile(source=f"t:{n}", file_name=n, data=text.encode()) for n, text in DOCS.items()]
    report = ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    assert report.counts()["ingested"] == len(DOCS)
    return store


# -- sparse vectors ------------------------------------------------------------------------------


def test_sparse_terms_are_stemmed_without_stop_words() -> None:
    encoder = SparseEncoder()
    assert encoder.terms("The cats were running and the cat runs") == ["cat", "run", "cat", "run"]
    assert encoder.terms("Café naïve") == ["cafe", "naiv"]  # accents folded, then stemmed
    assert encoder.terms("the and of") == []


def test_sparse_weights_are_bm25_term_frequencies() -> None:
    encoder = SparseEncoder(k1=1.2, b=0.75, avg_length=4.0)
    indices, values = encoder.document("cat cat dog")  # 3 terms: cat x2, dog x1
    weights = dict(zip(indices, values, strict=True))
    norm = 1.2 * (1 - 0.75 + 0.75 * 3 / 4.0)
    assert weights[encoder.term_index("cat")] == pytest.approx(2 * 2.2 / (2 + norm))
    assert weights[encoder.term_index("dog")] == pytest.approx(1 * 2.2 / (1 + norm))
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    q_indices, q_values = encoder.query("cats and dogs and cats")
    assert sorted(q_indices) == sorted({encoder.term_index("cat"), encoder.term_index("dog")})
    assert q_values == [1.0, 1.0]


def test_sparse_indices_are_deterministic_32_bit_hashes() -> None:
    first, second = SparseEncoder(), SparseEncoder()
    assert first.document("Volcanic ash travels far") == second.document("Volcanic ash travels far")
    index = SparseEncoder.term_index("volcan")
    assert 0 <= index < 2**32
    assert index == SparseEncoder.term_index("volcan")  # stable across instances and runs
    # MurmurHash3 x86_32, seed 0: "foo" -> -156908512 signed (the mmh3 documentation's example).
    assert SparseEncoder.term_index("foo") == 2**32 - 156908512


def test_unknown_stemmer_language_is_a_clear_error() -> None:
    with pytest.raises(RepresentationError, match="klingon"):
        SparseEncoder(language="klingon")


def test_idf_modifier_in_local_mode_gives_bm25_scores(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, index={"sparse": {"avg_length": 5.0}}
    )
    store = build(settings)
    # "statins" occurs in 1 of 4 documents; Qdrant's IDF is ln(1 + (N - n + 0.5) / (n + 0.5)).
    result = search("statins", store=store, embedder=make_embedder(settings.model), mode="sparse", top_k=4)
    assert [hit.file_name for hit in result.hits] == ["statins.txt"]  # no other document has the term
    encoder = SparseEncoder(avg_length=5.0)
    indices, values = encoder.document(DOCS["statins.txt"])
    tf = dict(zip(indices, values, strict=True))[encoder.term_index("statin")]
    idf = math.log(1 + (4 - 1 + 0.5) / (1 + 0.5))
    assert result.hits[0].score == pytest.approx(idf * tf, rel=1e-4)


def test_rare_terms_weigh_more_than_common_ones(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = build(settings)
    # "blood" is in two documents, "ash" in one: the document with the rare term wins.
    result = search("blood ash", store=store, embedder=make_embedder(settings.model), mode="sparse", top_k=4)
    assert result.hits[0].file_name == "volcano.txt"
    assert {hit.file_name for hit in result.hits} == {"volcano.txt", "statins.txt", "aspirin.txt"}


# -- other representations -----------------------------------------------------------------------


def test_sentence_splitter_and_keyword_extractor() -> None:
    sentences = SentenceSplitter(max_sentences=2).split("Dr. Smith went home. He slept. Then he woke up.")
    assert sentences == ["Dr. Smith went home.", "He slept."]  # "Dr." does not end a sentence
    phrases = KeywordExtractor(top_n=4, max_ngram=2).extract(
        "Volcanic eruptions release lava and ash. Volcanic ash clouds disrupt air travel across Europe."
    )
    assert 1 <= len(phrases) <= 4
    assert any("ash" in phrase.lower() or "volcanic" in phrase.lower() for phrase in phrases)
    assert len({p.lower() for p in phrases}) == len(phrases)


def test_points_hold_every_representation_and_the_record_says_so(tmp_path: Path) -> None:
    settings = all_settings(tmp_path)
    store = build(settings)
    record = store.require_record()
    reps = record.representations
    assert reps.available() == ["dense", "sparse", "sentences", "keywords"]
    assert reps.sparse is not None and reps.sparse.avg_length is not None and reps.sparse.avg_length > 1
    assert reps.sentences is not None and reps.sentences.splitter == "pysbd"
    assert reps.keywords is not None and (reps.keywords.chunk_weight, reps.keywords.keyword_weight) == (
        0.7,
        0.3,
    )
    assert reps.keywords.instruction == InstructionSet.for_keywords("")
    assert reps.questions is None
    info = store.client.get_collection(store.collection)
    assert info.config.metadata["instructor_search"]["representations"]["sparse"]["k1"] == 1.2
    points, _ = store.client.scroll(store.collection, limit=10, with_vectors=True, with_payload=True)
    embedder = make_embedder(settings.model)
    for point in points:
        vectors = point.vector
        assert isinstance(vectors, dict)
        assert set(vectors) == {"", SPARSE_VECTOR, SENTENCE_VECTOR, KEYWORD_VECTOR, KEYWORD_MEAN_VECTOR}
        text = point.payload["page_content"]
        sentences = SentenceSplitter().split(text)
        assert len(vectors[SENTENCE_VECTOR]) == len(sentences) == 2  # one vector per sentence
        expected = embedder.embed(sentences, record.instruction_set.document)
        np.testing.assert_allclose(np.array(vectors[SENTENCE_VECTOR]), expected, atol=1e-5)
        dense = np.array(vectors[""])
        mean = np.array(vectors[KEYWORD_MEAN_VECTOR])
        assert np.linalg.norm(mean) == pytest.approx(1.0, abs=1e-5)
        mixed = 0.7 * dense + 0.3 * mean
        np.testing.assert_allclose(vectors[KEYWORD_VECTOR], mixed / np.linalg.norm(mixed), atol=1e-5)
        assert point.payload["metadata"]["keywords"]


def test_sentence_mode_scores_by_maxsim(tmp_path: Path) -> None:
    settings = all_settings(tmp_path)
    store = build(settings)
    embedder = make_embedder(settings.model)
    query = "volcanic ash wind"
    result = search(query, store=store, embedder=embedder, mode="sentences", top_k=4)
    instructions = store.require_record().instruction_set
    q = embedder.embed([query], instructions.query)[0]
    by_file = {}
    for name, text in DOCS.items():
        sentences = embedder.embed(SentenceSplitter().split(text), instructions.document)
        by_file[name] = float(np.max(sentences @ q))  # MaxSim of a one-vector query
    assert [hit.file_name for hit in result.hits] == sorted(by_file, key=lambda n: -by_file[n])
    for hit in result.hits:
        assert hit.score == pytest.approx(by_file[hit.file_name], abs=1e-4)


def test_reweighting_keywords_needs_no_embedding(tmp_path: Path) -> None:
    settings = all_settings(tmp_path)
    store = build(settings)
    record = store.reweight_keywords(1.0, 0.0)
    assert record.representations.keywords is not None
    assert record.representations.keywords.chunk_weight == 1.0
    assert store.require_record().representations.keywords.keyword_weight == 0.0  # type: ignore[union-attr]
    points, _ = store.client.scroll(store.collection, limit=10, with_vectors=True)
    for point in points:
        np.testing.assert_allclose(point.vector[KEYWORD_VECTOR], point.vector[""], atol=1e-5)  # type: ignore[index]


# -- modes and fusion ----------------------------------------------------------------------------


def test_every_mode_runs_end_to_end(tmp_path: Path) -> None:
    settings = all_settings(tmp_path)
    store = build(settings)
    embedder = make_embedder(settings.model)
    assert available_modes(store.require_record()) == [m for m in MODES if "questions" not in m]
    for mode in available_modes(store.require_record()):
        for fusion in ("rrf", "dbsf"):
            result = search(
                "statins cholesterol", store=store, embedder=embedder, mode=mode, fusion=fusion, top_k=2
            )
            assert result.mode == mode and result.note is None
            assert result.hits[0].file_name == "statins.txt", (mode, fusion)


def test_fusion_ranks_documents_found_by_both_signals_first(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = build(settings)
    embedder = make_embedder(settings.model)
    pairs = 0
    for query in ("sunlight ash", "blood pain", "cat fever", "heart lava wind", "statins sleep"):
        dense = [
            h.file_name for h in search(query, store=store, embedder=embedder, mode="dense", top_k=4).hits
        ]
        sparse = [
            h.file_name for h in search(query, store=store, embedder=embedder, mode="sparse", top_k=4).hits
        ]
        hybrid = [
            h.file_name for h in search(query, store=store, embedder=embedder, mode="hybrid", top_k=4).hits
        ]
        assert set(hybrid) == set(dense) | set(sparse)
        in_both = [d for d in hybrid if d in dense[:2] and d in sparse[:2]]
        in_one = [d for d in hybrid if (d in dense) != (d in sparse)]
        for good in in_both:  # rank <= 2 in both lists beats rank >= 1 in one list only
            for other in in_one:
                assert hybrid.index(good) < hybrid.index(other), (query, dense, sparse, hybrid)
                pairs += 1
    assert pairs > 0


def test_fused_document_of_both_lists_beats_single_list_documents(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    client = open_client(settings)
    store = VectorStore(client, "fusion")
    texts = {
        "both.txt": "glacier melt raises sea levels",
        "lexical.txt": "glacier glacier glacier tours and hiking boots",
        "other.txt": "the stock market fell on monday",
    }
    files = [SourceFile(source=f"f:{n}", file_name=n, data=t.encode()) for n, t in texts.items()]
    embedder = make_embedder(settings.model)
    ingest_files(files, settings=settings, embedder=embedder, store=store)
    query = "glacier melt sea levels"
    hybrid = search(query, store=store, embedder=embedder, mode="hybrid", top_k=3)
    assert hybrid.hits[0].file_name == "both.txt"
    sparse_only = [
        h.file_name for h in search(query, store=store, embedder=embedder, mode="sparse", top_k=3).hits
    ]
    assert "both.txt" in sparse_only


def test_mode_the_collection_lacks_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, index={"sparse": {"enabled": False}}
    )
    store = build(settings)
    embedder = make_embedder(settings.model)
    assert store.require_record().representations.available() == ["dense"]
    with pytest.raises(ModeUnavailableError) as info:
        search("cats", store=store, embedder=embedder, mode="hybrid")
    message = str(info.value)
    assert "'hybrid'" in message and "sparse" in message and "modes available: dense" in message
    assert "INSTRUCTOR_SEARCH_INDEX__SPARSE__ENABLED=true" in message and "--collection" in message
    fallback = search("cats", store=store, embedder=embedder, mode="hybrid", fallback=True)
    assert fallback.mode == "dense" and fallback.note and "hybrid" in fallback.note
    with pytest.raises(QueryError, match="unknown search mode"):
        search("cats", store=store, embedder=embedder, mode="bogus")


def test_score_threshold_only_for_cosine_modes(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = build(settings)
    embedder = make_embedder(settings.model)
    with pytest.raises(QueryError, match="cosine"):
        search("cats", store=store, embedder=embedder, mode="hybrid", score_threshold=0.5)
    assert search("cats", store=store, embedder=embedder, mode="dense", score_threshold=0.01).hits


def test_existing_collection_keeps_its_representations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = load_settings(
        data_dir=str(tmp_path / "data"), model={"backend": "fake"}, index={"sparse": {"enabled": False}}
    )
    store = build(plain)
    store.client.close()
    richer = all_settings(tmp_path)
    client = open_client(richer)
    store = VectorStore(client, "modes")
    files = [SourceFile(source="t:new.txt", file_name="new.txt", data=b"Glaciers melt in summer.")]
    report = ingest_files(files, settings=richer, embedder=make_embedder(richer.model), store=store)
    assert report.counts()["ingested"] == 1
    assert any("sparse" in note and "new collection" in note for note in report.skipped)
    assert store.require_record().representations.available() == ["dense"]


# -- questions -----------------------------------------------------------------------------------


def test_questions_are_skipped_without_a_generator(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = VectorStore(open_client(settings), "q")
    files = [SourceFile(source="t:a", file_name="a.txt", data=b"Some text about glaciers.")]
    report = ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    assert report.skipped == []  # nobody asked for questions: nothing to say
    asked = override(settings, index={"questions": {"count": 5}})  # configured, but no generator
    files = [SourceFile(source="t:b", file_name="b.txt", data=b"More text about glaciers.")]
    report = ingest_files(files, settings=asked, embedder=make_embedder(asked.model), store=store)
    assert any(note.startswith("questions: no generator model is configured") for note in report.skipped)
    assert report.to_json()["skipped"] == report.skipped
    assert store.require_record().representations.questions is None
    with pytest.raises(ModeUnavailableError, match="QUESTIONS__GENERATOR"):
        search("glaciers", store=store, embedder=make_embedder(settings.model), mode="questions")


def test_missing_generator_model_fails_before_anything_is_written(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-flan-t5"
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        index={"questions": {"generator": str(missing)}},
    )
    store = VectorStore(open_client(settings), "q")
    files = [SourceFile(source="t:a", file_name="a.txt", data=b"Some text about glaciers.")]
    with pytest.raises(RepresentationError) as info:
        ingest_files(files, settings=settings, embedder=make_embedder(settings.model), store=store)
    assert str(missing) in str(info.value) and "GENERATOR" in str(info.value)
    assert store.count() == 0 and store.documents() == []
    with pytest.raises(RepresentationError, match="could not be loaded"):
        QuestionGenerator(str(missing))


# -- CLI, evaluation, LangChain ------------------------------------------------------------------


def test_cli_search_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    common = ["--backend", "fake", "--data-dir", str(tmp_path / "data")]
    assert main(["ingest", str(folder), *common]) == 0
    capsys.readouterr()
    assert main(["search", "cholesterol statins", "--mode", "sparse", "--json", *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "sparse" and out["hits"][0]["file_name"] == "statins.txt"
    assert main(["search", "cholesterol statins", "--mode", "hybrid", *common]) == 0
    assert "mode hybrid" in capsys.readouterr().out
    # The default mode comes from the settings.
    monkeypatch.setenv("INSTRUCTOR_SEARCH_SEARCH__MODE", "sparse")
    assert main(["search", "cholesterol statins", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["mode"] == "sparse"
    # A mode the collection lacks: exit code and message.
    code = main(["search", "cholesterol", "--mode", "sentences", *common])
    assert code != 0
    assert "sentences" in capsys.readouterr().err


def test_eval_beir_mode_and_keyword_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from beirgen import make_folder

    folder = make_folder(tmp_path)
    store_dir = tmp_path / "store"
    base = ["eval", "beir", str(folder), "--json", "--backend", "fake", "--data-dir", str(tmp_path / "data")]
    env_free = [*base, "--store", str(store_dir), "--record", "--docs-dir", str(tmp_path / "docs")]
    assert main([*env_free, "--mode", "hybrid"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "hybrid" and out["fusion"] == "dbsf" and out["ndcg_at_10"] == pytest.approx(1.0)
    assert out["representations"]["sparse"]["k1"] == 1.2
    assert out["index"]["points"] == 4 and out["index"]["bytes_on_disk"] > 0
    assert (
        out["extra"]["build"]["reused"] is False
        and "sparse" in out["extra"]["build"]["representation_seconds"]
    )
    assert main([*env_free, "--mode", "sparse"]) == 0  # reuses the collection: nothing embedded
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "sparse" and out["fusion"] is None and out["extra"]["build"]["reused"] is True
    results = sorted(p.name for p in (tmp_path / "docs" / "results" / "beir").iterdir())
    assert results == ["tiny-test-json-default-hybrid-dbsf.json", "tiny-test-json-default-sparse.json"]
    markdown = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "| tiny | test | json | hybrid | default |" in markdown
    assert "### Retrieval modes and representations" in markdown
    assert "| tiny | test | json | sparse |  | dense+sparse | 1.0000 |" in markdown


def test_langchain_reads_the_dense_vector_of_a_hybrid_collection(tmp_path: Path) -> None:
    from langchain_qdrant import QdrantVectorStore

    from embedder.langchain import InstructorEmbeddings

    settings = all_settings(tmp_path)
    store = build(settings)
    embedder = make_embedder(settings.model)
    embeddings = InstructorEmbeddings.from_instruction_set(
        store.require_record().instruction_set, embedder=embedder
    )
    lc = QdrantVectorStore(client=store.client, collection_name=store.collection, embedding=embeddings)
    docs = lc.similarity_search_with_score("statins cholesterol", k=2)
    ours = search("statins cholesterol", store=store, embedder=embedder, mode="dense", top_k=2)
    assert [d.metadata["file_name"] for d, _ in docs] == [h.file_name for h in ours.hits]
    assert [s for _, s in docs] == pytest.approx([h.score for h in ours.hits], abs=1e-5)


def test_weighted_rrf_follows_the_weights(tmp_path: Path) -> None:
    settings = load_settings(data_dir=str(tmp_path / "data"), model={"backend": "fake"})
    store = build(settings)
    embedder = make_embedder(settings.model)
    query = "blood pain sunlight"
    dense = [h.file_name for h in search(query, store=store, embedder=embedder, mode="dense", top_k=4).hits]
    sparse = [h.file_name for h in search(query, store=store, embedder=embedder, mode="sparse", top_k=4).hits]
    only_dense = search(
        query, store=store, embedder=embedder, mode="hybrid", fusion="rrf", top_k=4, weights={"sparse": 0.0}
    )
    assert [h.file_name for h in only_dense.hits] == dense
    only_sparse = search(
        query, store=store, embedder=embedder, mode="hybrid", fusion="rrf", top_k=4, weights={"dense": 0.0}
    )
    assert [h.file_name for h in only_sparse.hits][: len(sparse)] == sparse
    k60 = search(query, store=store, embedder=embedder, mode="hybrid", fusion="rrf", top_k=4, rrf_k=60)
    # Qdrant's RRF: 1 / (k + rank) per list, rank from 0; two lists at most.
    assert 1 / 63 <= k60.hits[0].score <= 2 / 60 + 1e-9


def test_fusion_settings_are_validated(tmp_path: Path) -> None:
    from config import ConfigError

    assert load_settings().search.fusion_label() == "dbsf"  # the default: it won on both train splits
    settings = load_settings(search={"fusion": "rrf", "rrf_k": 60, "weights": {"sparse": 0.5}})
    assert settings.search.fusion_label() == "rrf(k=60,sparse=0.5)"
    with pytest.raises(ConfigError, match="must not be negative"):
        load_settings(search={"weights": {"sparse": -1.0}})
    # Mode and representation names come from the representations registry, which the settings
    # (the lowest layer) cannot import: the search that uses them refuses unknown ones, naming the
    # valid ones.
    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        search={"mode": "telepathy", "weights": {"bm42": 1.0}},
    )
    store = build(settings)
    embedder = make_embedder(settings.model)
    with pytest.raises(QueryError, match=r"bm42.*use representation names: dense, sparse"):
        search("cats", store=store, embedder=embedder, **options_from(settings.search))
    with pytest.raises(QueryError, match=r"unknown search mode 'telepathy'; use one of: dense, sparse"):
        search("cats", store=store, embedder=embedder, mode=settings.search.mode)


def test_cli_ingest_reports_the_skipped_question_representation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(DOCS["cats.txt"])
    assert main(["ingest", str(folder), "--backend", "fake", "--data-dir", str(tmp_path / "data")]) == 0
    assert "skipped representation" not in capsys.readouterr().out  # questions were never asked for
    (folder / "b.txt").write_text(DOCS["volcano.txt"])
    monkeypatch.setenv("INSTRUCTOR_SEARCH_INDEX__QUESTIONS__COUNT", "5")
    assert main(["ingest", str(folder), "--backend", "fake", "--data-dir", str(tmp_path / "data")]) == 0
    assert "skipped representation questions: no generator model is configured" in capsys.readouterr().out


@pytest.mark.shared_data
def test_questions_from_a_configured_generator_end_to_end(tmp_path: Path) -> None:
    """A tiny, randomly initialised T5 (tokenizer of the tiny-instructor fixture) stands in for FLAN-T5.

    Its questions are gibberish, but they are really generated, embedded and stored by the same
    code path a real FLAN-T5 checkpoint takes.
    """
    import torch
    from testdata import FIXTURES
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    fixture = FIXTURES / "tiny-instructor" / "model"  # the bundled copy: runs without ../shared
    torch.manual_seed(0)
    config = T5Config.from_pretrained(fixture, architectures=["T5ForConditionalGeneration"], use_cache=True)
    generator = tmp_path / "tiny-t5-generator"
    T5ForConditionalGeneration(config).save_pretrained(generator)
    AutoTokenizer.from_pretrained(fixture).save_pretrained(generator)

    settings = load_settings(
        data_dir=str(tmp_path / "data"),
        model={"backend": "fake"},
        index={"questions": {"generator": str(generator), "count": 2, "max_new_tokens": 8}},
    )
    store = build(settings)
    record = store.require_record()
    assert record.representations.questions is not None
    assert record.representations.questions.generator == str(generator)
    assert "questions" in available_modes(record)
    points, _ = store.client.scroll(store.collection, limit=10, with_vectors=True, with_payload=True)
    for point in points:
        questions = point.payload["metadata"]["questions"]
        assert 1 <= len(questions) <= 2 and all(isinstance(q, str) and q for q in questions)
        assert "questions" in point.vector  # type: ignore[operator]
    result = search("statins", store=store, embedder=make_embedder(settings.model), mode="hybrid+questions")
    assert result.mode == "hybrid+questions" and result.hits


def test_document_filter_applies_to_every_fused_representation(tmp_path: Path) -> None:
    settings = all_settings(tmp_path)
    store = build(settings)
    embedder = make_embedder(settings.model)
    for mode in ("sparse", "hybrid", "hybrid+sentences", "hybrid+keywords", "all"):
        result = search(
            "statins cholesterol lava",
            store=store,
            embedder=embedder,
            mode=mode,
            documents=["volcano.txt"],
            top_k=4,
        )
        assert [hit.file_name for hit in result.hits] == ["volcano.txt"], mode

"""A reindex that cannot build changes nothing: a refused index choice or memory budget is one line and
persists nothing, and a stored choice the corpus cannot train gives way to Flat (issue "Tried as a hostile user would, again")."""
from __future__ import annotations

import pytest
from cli_store import cli, store_with_prototypes
from conftest import write
from fakes import BandEncoder

from proto_index import Store
from proto_index.errors import InvalidInput

LABELS = ["siren", "dog bark", "drilling", "bird song"]


@pytest.fixture
def store(tmp_path, corpus_dir):
    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    yield s
    s.close()


@pytest.mark.parametrize("args, message", [
    (["--index", "IVF1,PQ1"], "index IVF1,PQ1 needs at least 256 vectors to train and the store holds 24; "
                              "choose Flat or auto until the corpus grows (nothing was changed)"),
    (["--index", "IVF4,PQ0"], "unsupported index 'IVF4,PQ0': IVF<nlist>,PQ<m> needs nlist and m of at least 1"),
    (["--memory-budget-gb", "-1"], "--memory-budget-gb must be a positive number of gigabytes, not -1.0"),
    (["--memory-budget-gb", "nan"], "--memory-budget-gb must be a positive number of gigabytes, not nan"),
])
def test_a_refused_reindex_is_one_line_and_persists_nothing(tmp_path, corpus_dir, args, message):
    from proto_index.store.storage import Storage

    st = store_with_prototypes(tmp_path, corpus_dir, LABELS)
    before = Storage.open(st)
    meta = (before.meta("index_factory"), before.meta("index_memory_budget"), before.meta("index_file"))
    before.close()
    result = cli("reindex", *args, "--store", st, code=2 if "gigabytes" in message else 1)
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    after = Storage.open(st)
    assert (after.meta("index_factory"), after.meta("index_memory_budget"), after.meta("index_file")) == meta
    after.close()
    more = tmp_path / "more"
    write(more / "late.wav", [(700.0, 0.5)], seed=7)
    assert cli("ingest", more, "--store", st, "--quiet").stdout.startswith("added 1 files")  # later ingests work
    assert "ok" in cli("verify", "--store", st).stdout


def test_a_faiss_refusal_is_one_line_and_a_stored_untrainable_choice_gives_way(tmp_path, store, monkeypatch, corpus_dir):
    from proto_index.store import index as index_module

    storage = store._storage

    def refuses(*args, **kwargs):
        raise RuntimeError("Error in void faiss::Clustering::train_encoded\n"
                           "Error: 'nx >= k' failed: Number of training points (24) should be at least as large as "
                           "number of clusters (256)")

    monkeypatch.setattr(index_module.VectorIndex, "build", classmethod(lambda cls, *a, **k: refuses()))
    with pytest.raises(InvalidInput, match=r"^FAISS could not build index Flat: Error: 'nx >= k' failed: Number of "
                                           r"training points \(24\) .* \(the store's index is unchanged\)$"):
        store.reindex("Flat", memory_budget=1 << 20)
    assert (storage.meta("index_factory"), storage.meta("index_memory_budget")) == (None, None)
    monkeypatch.undo()
    with storage.writer():  # as an earlier version left it: a choice 24 vectors cannot train
        storage.set_meta("index_factory", "IVF1,PQ1")
    assert storage.index_plan().factory == "Flat"
    assert store.reindex().factory == "Flat"  # a rebuild with it falls back rather than failing
    assert storage.meta("index_factory") == "IVF1,PQ1"  # and keeps it for when the corpus has grown
    with pytest.raises(InvalidInput, match="unsupported index 'IVF0,PQ4'"):
        store.reindex("IVF0,PQ4")
    with pytest.raises(InvalidInput, match=r"^the index memory budget must be a whole number of bytes of at least 1, got -5$"):
        store.reindex(memory_budget=-5)

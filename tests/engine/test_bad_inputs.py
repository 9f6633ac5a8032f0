"""Every kind of bad input the issue lists, through the real `ingest` command: one clear line each,
recorded in the catalog, and every good file ingested."""
import os

import numpy as np
import soundfile as sf
from audio_factory import corrupt_header, nan_wav, text_as_wav, truncated, write_wav, zero_length
from cli_store import cli

from proto_index import Store


def test_each_bad_input_is_one_line_and_the_rest_is_ingested(tmp_path):
    folder = tmp_path / "in"
    good = [
        write_wav(folder / "ok_16k.wav", 2.0, 16_000, 1),
        write_wav(folder / "ok_8ch.wav", 1.5, 48_000, 8),  # 8-channel audio is mixed down, not refused
        write_wav(folder / "deep" / "ok_441.wav", 3.0, 44_100, 2, subtype="PCM_24"),
    ]
    bad = {
        "header.wav": corrupt_header(folder / "header.wav"),
        "zero.wav": zero_length(folder / "zero.wav"),
        "text.wav": text_as_wav(folder / "text.wav"),
        "nan.wav": nan_wav(folder / "nan.wav"),
    }
    inf = folder / "inf.wav"
    data = np.zeros(16_000, np.float32)
    data[100] = np.inf
    sf.write(inf, data, 16_000, subtype="FLOAT")
    bad["inf.wav"] = inf
    one = folder / "one_sample.wav"
    sf.write(one, np.array([0.5], np.float32), 16_000)
    bad["one_sample.wav"] = one
    ghost = folder / "ghost.wav"
    os.symlink(tmp_path / "nowhere.wav", ghost)  # a path that cannot be read
    bad["ghost.wav"] = ghost
    os.symlink(folder, folder / "deep" / "loop")  # a symlink loop: must terminate, not duplicate
    cut = truncated(folder / "cut.wav")  # valid header, data cut mid-frame: readable up to the cut

    store = tmp_path / "store"
    cli("init", "--store", store, "--model", "fake-bands")
    result = cli("ingest", folder, "--store", store, code=3)
    lines = result.stderr.strip().splitlines()
    for name in bad:
        mine = [ln for ln in lines if name in ln]
        assert len(mine) == 1, f"{name}: {mine}\n{result.stderr}"
        assert len(mine[0].split(":", 1)[1].strip()) > 5  # a reason follows the path
    assert [ln for ln in lines if "one_sample.wav" in ln][0].endswith("too short to embed (1 sample at 16000 Hz)")
    assert any("non-finite" in ln for ln in lines if "nan.wav" in ln)
    with Store.open(store) as s:
        info = s.info()
    recorded = {os.path.basename(p) for p, _ in info["failures"]}
    assert recorded == set(bad)
    assert info["counts"]["recordings"] == len(good) + 1  # the good files and the readable part of cut.wav
    assert f"added {len(good) + 1} files" in result.stdout and f"{len(bad)} failed" in result.stdout
    assert cut.exists()

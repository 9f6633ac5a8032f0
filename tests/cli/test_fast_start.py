"""A start-up that imports only what the command needs: a one-file classify on a demo store builds
the audio tower alone and imports neither laion_clap nor transformers (nor what they pull in).
Timing is bench/startup.py's job.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

HEAVY = ("laion_clap", "clap_module", "sklearn", "torchvision", "torchaudio", "pandas", "webdataset", "h5py",
         "transformers", "scipy.signal", "numba", "librosa", "torchlibrosa", "torch._dynamo")
"""What a one-file classify on a demo store imported when the model layer was laion_clap's, and must not now.
torch._dynamo (~1.8 s) came from nn.Embedding's normal_ init on the meta device, which the model now skips."""


# -- a start-up in a fresh process -------------------------------------------------------------------

@pytest.mark.slow
def test_a_classify_start_up_imports_no_model_library_it_does_not_run(tmp_path):
    env = {**os.environ, "PROTO_INDEX_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    store, labels, clip = tmp_path / "store", tmp_path / "labels.txt", tmp_path / "clip.wav"
    labels.write_text("siren\ndog bark\n")
    import soundfile as sf
    t = np.arange(48_000 * 3) / 48_000
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32), 48_000)

    def cli(*args, report=None):
        code = ("import sys, json; from proto_index.cli.app import main; sys.argv[0] = 'proto-index'\n"
                "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
                f"json.dump(sorted(sys.modules), open({str(report)!r}, 'w')) if {report is not None} else None\n")
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr

    cli("init", "--store", str(store), "--model", "clap-tiny-demo", "--device", "cpu")
    cli("classes", "add", "c", "--labels-file", str(labels), "--store", str(store))
    cli("prototypes", "build", "c", "--method", "zero-shot", "--store", str(store))
    cli("env", "add", "park", "--text", "park", "--store", str(store))
    runs = []
    for run in range(2):
        report = tmp_path / f"modules{run}.json"
        cli("classify", str(clip), "-p", "c-zero-shot", "--env", "park", "--out", str(tmp_path / f"out{run}.csv"),
            "--store", str(store), "--device", "cpu", report=report)
        runs.append(set(json.loads(report.read_text())))
    assert (tmp_path / "out0.csv").read_text() == (tmp_path / "out1.csv").read_text()
    assert "proto_index.clap.model" in runs[1] and "torch" in runs[1]
    assert sorted(m for m in HEAVY if m in runs[0] | runs[1]) == []

"""What a reader says about one file: typed messages, in order, that survive a process boundary."""
import hashlib
import os
import pickle

import numpy as np
from audio_factory import text_as_wav, write_wav

from proto_index.audio.windows import Cutting
from proto_index.engine.reading import STREAM_MESSAGE_WINDOWS, Done, Failed, Known, Opened, Windows, read_file

HOP = 48_000 * 10


def kinds(messages):
    return [type(m) for m in messages]


def test_a_short_file_is_opened_windowed_in_one_message_and_done(tmp_path):
    path = write_wav(tmp_path / "a.wav", 25.0, 16000, channels=2)
    messages = list(read_file(path, Cutting(hop=HOP), True, None))
    assert kinds(messages) == [Opened, Windows, Done]
    opened, windows, done = messages
    st = os.stat(path)
    assert opened == Opened(hashlib.sha256(path.read_bytes()).hexdigest(), 16000, 2, st.st_size, st.st_mtime_ns)
    assert [(w.start, w.end) for w in windows.windows] == [(0, 480_000), (480_000, 960_000), (960_000, 1_200_000)]
    assert all(len(w.samples) == w.end - w.start for w in windows.windows)
    assert done == Done(1_200_000)


def test_a_long_file_streams_its_windows_a_few_at_a_time(tmp_path):
    path = write_wav(tmp_path / "long.wav", 65.0, 16000)
    messages = list(read_file(path, Cutting(hop=HOP), False, None))
    assert kinds(messages) == [Opened, Windows, Windows, Windows, Windows, Done]
    assert messages[0].sha256 is None
    sizes = [len(m.windows) for m in messages[1:-1]]
    assert sizes == [STREAM_MESSAGE_WINDOWS] * 3 + [1]  # 7 windows: 6 of 10 s and the 5 s tail
    starts = [w.start for m in messages[1:-1] for w in m.windows]
    assert starts == [i * HOP for i in range(7)]
    assert messages[-1] == Done(65 * 48_000)


def test_a_known_hash_is_not_decoded_and_an_unreadable_file_fails(tmp_path):
    path = write_wav(tmp_path / "a.wav", 3.0, 16000)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    asked = []
    messages = list(read_file(path, Cutting(hop=HOP), True, lambda s: asked.append(s) or True))
    st = os.stat(path)
    assert messages == [Known(sha, st.st_size, st.st_mtime_ns)] and asked == [sha]

    [failed] = read_file(text_as_wav(tmp_path / "t.wav"), Cutting(hop=HOP), True, None)
    assert isinstance(failed, Failed) and failed.reason
    [missing] = read_file(tmp_path / "gone.wav", Cutting(hop=HOP), True, None)
    assert isinstance(missing, Failed) and missing.reason.startswith("cannot read file")


def test_messages_pickle_round_trip(tmp_path):
    """A reader in another process hands the same messages over a pipe."""
    path = write_wav(tmp_path / "a.wav", 12.0, 16000)
    messages = list(read_file(path, Cutting(hop=HOP), True, None))
    back = pickle.loads(pickle.dumps(messages))
    assert kinds(back) == kinds(messages) and back[0] == messages[0] and back[-1] == messages[-1]
    for a, b in zip(back[1].windows, messages[1].windows):
        assert (a.start, a.end) == (b.start, b.end) and np.array_equal(a.samples, b.samples)

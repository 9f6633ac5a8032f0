"""Run one encoder from several threads at once (the thread-safety tests of the model layer)."""
import threading


def embed_from_threads(encoder, work, *, rounds: int = 2) -> dict:
    """``work[i] = (clips, texts)`` embedded by thread i, all released together, ``rounds`` times;
    returns ``{i: (text vectors, audio vectors)}`` of the last round, or raises the first error."""
    start, results, errors = threading.Barrier(len(work)), {}, []

    def run(i):
        try:
            start.wait(60)
            for _ in range(rounds):
                results[i] = (encoder.embed_texts(work[i][1]), encoder.embed_waveforms(work[i][0], batch_size=3))
        except Exception as e:  # noqa: BLE001 - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results

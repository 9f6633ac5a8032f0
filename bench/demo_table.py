"""scripts/demo.sh's accuracy table for any demo model, through the library: the same data (seed 0), the
same prototypes (zero-shot, TGAP N=35) and the same cells (none / text / audio backgrounds, default
and auto tau), each one classify of the archive scored against its manifest.

    python bench/demo_table.py --model clap-tiny-fair [--out DIR]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from proto_index import ScoringOptions, Store
from proto_index.demo_data import ENVIRONMENTS, table, write_demo_data
from proto_index.options import EnvironmentOptions, PrototypeOptions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="clap-tiny-demo", help="clap-tiny-demo or clap-tiny-fair")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="demo-table-"))
    t0 = time.perf_counter()
    write_demo_data(out)
    labels = (out / "labels.txt").read_text().splitlines()
    with Store.init(out / "store", model=args.model, device="cpu") as store:
        store.ingest([out / "corpus"])  # as scripts/demo.sh: the archive is classified, not ingested
        store.add_classes("urban", labels)
        store.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
        store.build_prototypes("urban", PrototypeOptions(method="tgap", n=35))
        for env in ENVIRONMENTS:
            store.add_environment(env, EnvironmentOptions(text=env.replace("_", " "), audio=sorted((out / "backgrounds" / env).iterdir())))
        (out / "table").mkdir(exist_ok=True)
        manifest = out / "archive" / "manifest.csv"
        cells = [("none", None, "default")] + [(a, t, n) for a in ("text", "audio") for t, n in ((None, "default"), ("auto", "auto"))]
        for prototypes in ("urban-zero-shot", "urban-tgap35"):
            for adapt, tau, name in cells:
                result = store.classify(manifest, prototypes, scoring=ScoringOptions(adapt=adapt, tau=tau))
                with open(out / "table" / f"{prototypes}__{adapt}__{name}.csv", "w", encoding="utf-8") as f:
                    f.write("path,label\n" + "".join(f"{r.path},{r.label}\n" for r in result.files))
    print(f"{args.model}: {time.perf_counter() - t0:.0f} s")
    print(table(out / "table", manifest))


if __name__ == "__main__":
    main()

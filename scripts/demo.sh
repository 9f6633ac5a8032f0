#!/usr/bin/env bash
# The main job end to end: generate audio, build a store, ingest a corpus, build prototypes,
# register environments, classify an archive by environment, then a table of accuracies.
#
# Without a checkpoint it runs the offline demo model clap-tiny-demo: the real LAION-CLAP
# architecture (HTSAT-tiny + a small text transformer) whose projection heads were trained on the
# generated sounds of proto_index.generated_audio only (python -m proto_index.embed.demo_training).
# It knows nothing else; real recordings need the paper's checkpoint:
#   PROTO_INDEX_CHECKPOINT=630k-audioset-fusion-best.pt PROTO_INDEX_TOKENIZER=roberta-base/ scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${OUT:-demo-output}"
rm -rf "$OUT"
export PROTO_INDEX_STORE="$OUT/store"
pi() { echo "+ proto-index $*" >&2; .venv/bin/proto-index "$@"; }

.venv/bin/python -m proto_index.demo_data data "$OUT"
if [ -n "${PROTO_INDEX_CHECKPOINT:-}" ]; then
  pi init --model clap-fusion --checkpoint "$PROTO_INDEX_CHECKPOINT" ${PROTO_INDEX_TOKENIZER:+--tokenizer-dir "$PROTO_INDEX_TOKENIZER"}
else
  echo "No PROTO_INDEX_CHECKPOINT: using clap-tiny-demo (trained on generated sounds only; a demo, not a real model)." >&2
  pi init --model clap-tiny-demo
fi
pi ingest "$OUT/corpus" || [ $? -eq 3 ]
pi classes add urban --labels-file "$OUT/labels.txt"
pi prototypes build urban --method zero-shot
pi prototypes build urban --method tgap --n 35
pi prototypes show urban-tgap35 --top 3
for env in park airport metro_station; do
  pi env add "$env" --text "${env//_/ }" --audio "$OUT/backgrounds/$env"
done
pi search "a siren wailing" -k 3
pi classify -p urban-tgap35 --manifest "$OUT/archive/manifest.csv" --out "$OUT/labels.csv" --all-scores
pi info
.venv/bin/python -m proto_index.demo_data score "$OUT/labels.csv" "$OUT/archive/manifest.csv"

# The table: each prototype set x (no adaptation, text backgrounds, audio backgrounds) x (default tau,
# --tau auto), every cell one `proto-index classify` run over the archive, scored against its manifest.
mkdir -p "$OUT/table"
for protos in urban-zero-shot urban-tgap35; do
  pi classify -p "$protos" --manifest "$OUT/archive/manifest.csv" --adapt none --quiet \
    --out "$OUT/table/${protos}__none__default.csv" >/dev/null
  for adapt in text audio; do
    pi classify -p "$protos" --manifest "$OUT/archive/manifest.csv" --adapt "$adapt" --quiet \
      --out "$OUT/table/${protos}__${adapt}__default.csv" >/dev/null
    pi classify -p "$protos" --manifest "$OUT/archive/manifest.csv" --adapt "$adapt" --tau auto --quiet \
      --out "$OUT/table/${protos}__${adapt}__auto.csv" >/dev/null
  done
done
pi gap urban-zero-shot
pi gap urban-tgap35
echo "Accuracy on $OUT/archive (24 clips, 6 classes: chance 0.17; tau unused without adaptation):"
.venv/bin/python -m proto_index.demo_data table "$OUT/table" "$OUT/archive/manifest.csv"
echo "Results: $OUT/labels.csv, $OUT/table/" >&2

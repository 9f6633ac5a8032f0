#!/usr/bin/env bash
# The main job end to end: generate audio, build a store, ingest a corpus, build prototypes,
# register environments, classify an archive by environment.
#
# Without a checkpoint it runs the offline model (clap-tiny-random: the real LAION-CLAP
# architecture with RANDOM weights), so the pipeline and its speed are real but the labels are
# meaningless. With the paper's checkpoint:
#   PROTO_INDEX_CHECKPOINT=630k-audioset-fusion-best.pt PROTO_INDEX_TOKENIZER=roberta-base/ scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${OUT:-demo-output}"
rm -rf "$OUT"
export PROTO_INDEX_STORE="$OUT/store"
pi() { echo "+ proto-index $*" >&2; .venv/bin/proto-index "$@"; }

.venv/bin/python -m proto_index.demo data "$OUT"
if [ -n "${PROTO_INDEX_CHECKPOINT:-}" ]; then
  pi init --model clap-fusion --checkpoint "$PROTO_INDEX_CHECKPOINT" ${PROTO_INDEX_TOKENIZER:+--tokenizer-dir "$PROTO_INDEX_TOKENIZER"}
else
  echo "No PROTO_INDEX_CHECKPOINT: using clap-tiny-random (random weights: labels below are MEANINGLESS)." >&2
  pi init --model clap-tiny-random
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
.venv/bin/python -m proto_index.demo score "$OUT/labels.csv" "$OUT/archive/manifest.csv"
echo "Results: $OUT/labels.csv" >&2

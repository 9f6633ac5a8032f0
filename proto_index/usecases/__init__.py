"""The use cases, one module per command family: ingest, prototypes, environments, classify, annotate, search, maintenance."""

"""The embedding engine: audio files read, decoded and windowed ahead (threads, processes or a Ray cluster), embedded in batches."""

"""What a classification run writes: field formats (exports), partitioned Parquet datasets, the HTML review report."""

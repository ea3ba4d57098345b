from rnnkit.data.pairs import (  # noqa: F401
    bucketed_dataset,
    read_freedict_examples,
    read_pairs,
    read_parallel_files,
    read_tsv_pairs,
)

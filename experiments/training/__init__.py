"""Training a model on a corpus: the corpus, the trainer, device and dtype, the execution autotuner."""

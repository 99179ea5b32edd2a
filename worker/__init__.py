"""The Kafka worker: consuming, producing, checkpoints, metrics and the command line."""

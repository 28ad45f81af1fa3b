"""Batch Gateway domain package: models, intake, providers, storage, orchestration steps."""

"""Model names and constructors, for the command line and the worker."""

from __future__ import annotations

from typing import Any

from models.base import Recommender
from models.imf import IncrementalMF
from models.popular import Popular

MODELS: dict[str, type[Recommender]] = {
    Popular.name: Popular,
    IncrementalMF.name: IncrementalMF,
}


def make_model(name: str, **params: Any) -> Recommender:
    """Build the model registered as `name` with constructor `params`."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}") from None
    return cls(**params)

"""Model names and constructors, for the command line and the worker."""

from __future__ import annotations

from typing import Any

from models.base import Recommender
from models.bprmf import BPRMF
from models.ifm import IncrementalFM
from models.imf import IncrementalMF
from models.knn import ItemKNN, UserKNN
from models.popular import Popular
from models.random import RandomRecommender
from models.sketch import SketchRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls
    for cls in (
        Popular,
        RandomRecommender,
        IncrementalMF,
        BPRMF,
        IncrementalFM,
        SketchRecommender,
        UserKNN,
        ItemKNN,
    )
}


def make_model(name: str, **params: Any) -> Recommender:
    """Build the model registered as `name` with constructor `params`."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(MODELS))}") from None
    return cls(**params)

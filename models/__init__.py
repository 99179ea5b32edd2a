"""Streaming recommenders and the test-then-learn evaluator; no Kafka here."""

from models.base import Event, ModelError, NonFiniteParameterError, Recommender
from models.registry import MODELS, make_model

__all__ = ["Event", "MODELS", "ModelError", "NonFiniteParameterError", "Recommender", "make_model"]

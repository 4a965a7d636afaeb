"""Built-in recommenders (judges)."""

from lettingo.hookspecs import hookimpl
from lettingo.recommenders.embedding_ranker import EmbeddingRanker
from lettingo.recommenders.llm_sentiment import LLMSentimentRecommender


@hookimpl
def lettingo_register_recommenders(register):
    register("llm_sentiment", LLMSentimentRecommender.from_config)
    register("embedding_ranker", EmbeddingRanker.from_config)

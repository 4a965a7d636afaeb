"""Built-in recommenders (judges)."""

from lettingo.hookspecs import hookimpl


@hookimpl
def lettingo_register_recommenders(register):
    from lettingo.recommenders.embedding_ranker import EmbeddingRanker
    from lettingo.recommenders.llm_ranker import LLMRanker
    from lettingo.recommenders.llm_rating import LLMRatingRecommender
    from lettingo.recommenders.llm_sentiment import LLMSentimentRecommender

    register("llm_sentiment", LLMSentimentRecommender.from_config)
    register("llm_rating", LLMRatingRecommender.from_config)
    register("llm_ranker", LLMRanker.from_config)
    register("embedding_ranker", EmbeddingRanker.from_config)

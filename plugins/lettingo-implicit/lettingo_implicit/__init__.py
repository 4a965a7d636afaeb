"""lettingo recommender on the ``implicit`` library: CF scores re-ranked with the profile (``recommender=implicit_rerank``)."""

__version__ = "0.1.0"

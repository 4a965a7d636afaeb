"""lettingo aligners built on TRL and PEFT (``aligner=dpo``)."""

__version__ = "0.1.0"

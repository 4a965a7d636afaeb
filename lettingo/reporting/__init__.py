"""A run's report: one model of what the run found, and renderers of it.

:func:`lettingo.reporting.model.build_report` reads a run directory once into a
:class:`~lettingo.reporting.model.RunReport`; :func:`~lettingo.reporting.markdown.render_markdown`
and :func:`~lettingo.reporting.html.render_html` turn it into ``report.md`` and ``report.html``
without reading anything else. :mod:`lettingo.reporting.naming` holds the method names that the
report, its renderers and ``lettingo compare`` share.
"""

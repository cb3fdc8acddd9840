"""``bybit-mock load``: a multiprocess load generator for the mock (docs/load.md).

Modules: ``command`` (the options and the run), ``mix`` (the weighted REST operations),
``rest`` (signed keep-alive HTTP/1.1), ``ws`` (subscribers and ``/v5/trade``), ``schedule``
(closed and open loops), ``runner`` (the processes), ``report`` (HDR histograms, the JSON).
Only ``command`` and ``mix`` may be imported without ``hdrhistogram`` installed.
"""

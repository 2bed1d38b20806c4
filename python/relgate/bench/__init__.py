"""Measurement code shared by ``relgate bench`` and ``benches/``: judge throughput in process
(``judge``) and through worker processes (``workers``)."""

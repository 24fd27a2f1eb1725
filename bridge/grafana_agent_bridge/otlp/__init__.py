"""OTLP/HTTP metrics ingest: decode (``decode``), translate to Prometheus series the way
Prometheus 3.x does (``naming``, ``translate``), and answer by OTLP's rules (``handler``)."""

"""OTLP metrics: decode a request (``decode``) and translate it to Prometheus series the way
Prometheus 3.x does (``naming``, ``translate``, ``exphist``). The HTTP endpoint that answers by
OTLP's rules is ``api.otlp``."""

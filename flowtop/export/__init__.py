"""Exports for a fleet's existing engines: IPFIX to flow collectors
(``ipfix``, ``records``, ``exporter``), Prometheus metrics (``metrics``)
and syslog JSON events (``syslog``).  Encoders are pure functions over
records; the loops that feed them live apart (``exporter``)."""

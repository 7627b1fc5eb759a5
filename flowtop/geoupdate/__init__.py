"""``flowtop -u``: download the GeoIP databases named in geoip.conf (a command,
not an enricher: ``enrich.geoip`` reads what it installs).

``update(conf_text=None, dest_dirs=DEST_DIRS, fetch=None, say=print,
today=None) -> int`` fetches every database of the configuration (the
package's ``conf/geoip.conf``, overridden by ``/etc/flowtop/geoip.conf``),
unpacks it (gzip, or MaxMind's tar.gz), checks that it is a MaxMind DB and
only then moves it over the old file with ``os.replace``: a failed or
corrupt download leaves the old database in place.  Messages go to ``say``,
one line each; errors are one line, never a traceback.  The exit status is
0 when every database is up to date, else 1.

Downloads use ``urllib`` when this Python has it, else ``uclient-fetch``
(OpenWrt), ``wget`` or ``curl``.  ``fetch(url, path)`` can be injected: it
writes the body to ``path`` or raises ``FetchError`` (``status`` is the HTTP
code when there is one).

Modules: ``conf`` (geoip.conf, errors), ``fetch`` (urllib or an external
tool), ``install`` (unpack, check, replace atomically), ``command``
(``update``, the loop over the databases).
"""

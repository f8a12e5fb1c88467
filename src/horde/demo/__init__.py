"""The embedded demo: a small shop to load-test and the locustfile that does it (``horde demo``)."""

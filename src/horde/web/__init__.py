"""The web UI and REST API: an aiohttp app over one :class:`horde.session.TestRun`, static files in
``static/`` (no build step, no CDN; charts by plotly.js from the installed plotly package).

The CLI adds the flags with :func:`horde.web.options.add_web_arguments` and runs
:class:`horde.web.server.WebServer` (``await start()`` → URL, ``await stop()``).
"""

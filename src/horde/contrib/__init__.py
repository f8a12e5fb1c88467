"""Locust's ``locust.contrib`` paths, so ``from locust.contrib.fasthttp import FastHttpUser`` ports as
``from horde.contrib.fasthttp import FastHttpUser``."""

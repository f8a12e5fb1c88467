"""Master-worker messaging: the message codec and schemas, and the ZeroMQ transport."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 2  # 2: stats entries travel as arrays (horde.stats.compact)

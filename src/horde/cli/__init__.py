"""horde.cli"""

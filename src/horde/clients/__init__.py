"""horde.clients"""

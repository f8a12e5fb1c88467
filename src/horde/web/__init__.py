"""horde.web"""

"""horde.demo"""

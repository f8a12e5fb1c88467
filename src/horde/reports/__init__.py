"""horde.reports"""
